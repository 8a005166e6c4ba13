"""Fixtures for hardware-control tests: a real uvicorn server whose CAN link is the
built-in simulator, driven by the unmodified icotronic library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from icoapi.api import create_app
from icoapi.simulator import Simulator
from tests.support import LiveServer, fast_simulator_config, simulator_settings


@pytest.fixture
def sim_server(tmp_path: Path) -> Iterator[LiveServer]:
    app = create_app(
        simulator_settings(tmp_path / "data"), simulator_config=fast_simulator_config()
    )
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(sim_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{sim_server.url}/api/v1", timeout=60) as http:
        yield http


@pytest.fixture
def simulator(sim_server: LiveServer) -> Simulator:
    simulator = sim_server.app.state.system.simulator
    assert simulator is not None
    return simulator
