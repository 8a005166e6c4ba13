"""WS /api/v1/logs/stream over a real socket (uvicorn), not the test transport."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from tests.support import make_settings


def test_stream_over_real_socket(live_server_factory: Callable[..., Any], tmp_path: Path) -> None:
    server = live_server_factory(make_settings(tmp_path / "data"))
    marker = f"live {uuid.uuid4().hex}"
    with connect(f"{server.ws_url}/api/v1/logs/stream", open_timeout=10) as websocket:
        logging.getLogger("icoapi.test").warning(marker)
        for _ in range(200):
            frame = websocket.recv(timeout=10)
            if marker in str(frame):
                break
        else:
            raise AssertionError("marker not received")
    assert str(frame).endswith(f"[icoapi.test] {marker}")
