"""WS /api/v1/logs/stream: live log lines."""

from __future__ import annotations

import logging
import uuid

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse, WebSocketTestSession

from icoapi.core.logging import LogFanout
from icoapi.logs.service import LogService
from tests.support import AppServices

STREAM = "/api/v1/logs/stream"


def read_until(websocket: WebSocketTestSession, marker: str, limit: int = 200) -> list[str]:
    frames = []
    for _ in range(limit):
        frame = websocket.receive_text()
        frames.append(frame)
        if marker in frame:
            return frames
    raise AssertionError(f"{marker!r} not received in {limit} frames")


def test_line_logged_after_connecting_arrives(api: TestClient) -> None:
    marker = f"marker {uuid.uuid4().hex}"
    with api.websocket_connect(STREAM) as websocket:
        logging.getLogger("icoapi.test").warning(marker)
        frames = read_until(websocket, marker)
    line = frames[-1]
    assert line.endswith(f"[WARNING] [icoapi.test] {marker}")  # the file's format
    assert "\n" not in line


def test_lines_arrive_in_order_one_per_frame(api: TestClient) -> None:
    token = uuid.uuid4().hex
    with api.websocket_connect(STREAM) as websocket:
        for number in range(50):
            logging.getLogger("icoapi.test").info("%s line %d", token, number)
        frames = read_until(websocket, f"{token} line 49", limit=500)
    ours = [frame.rsplit(" ", 1)[1] for frame in frames if token in frame]
    assert ours == [str(number) for number in range(50)]


def test_every_client_gets_the_line(api: TestClient) -> None:
    marker = f"both {uuid.uuid4().hex}"
    with api.websocket_connect(STREAM) as first, api.websocket_connect(STREAM) as second:
        logging.getLogger("icoapi.test").error(marker)
        assert marker in read_until(first, marker)[-1]
        assert marker in read_until(second, marker)[-1]


def test_disconnect_unsubscribes(api: TestClient) -> None:
    fanout: LogFanout = AppServices(api).logs.fanout
    before = fanout.subscriber_count
    with api.websocket_connect(STREAM) as websocket:
        marker = f"sub {uuid.uuid4().hex}"
        logging.getLogger("icoapi.test").warning(marker)
        read_until(websocket, marker)
        assert fanout.subscriber_count == before + 1
    assert fanout.subscriber_count == before


def test_secret_is_redacted_in_stream(api: TestClient) -> None:
    AppServices(api).configs.redactor.register(["streamed-secret-42"])
    marker = f"secret {uuid.uuid4().hex}"
    with api.websocket_connect(STREAM) as websocket:
        logging.getLogger("icoapi.test").warning("%s streamed-secret-42", marker)
        assert read_until(websocket, marker)[-1].endswith(f"{marker} ***")


@pytest.mark.parametrize("origin", ["http://localhost:5173", "http://testserver"])
def test_allowed_browser_origins(api: TestClient, origin: str) -> None:
    marker = f"origin {uuid.uuid4().hex}"
    with api.websocket_connect(STREAM, headers={"origin": origin}) as websocket:
        logging.getLogger("icoapi.test").warning(marker)
        read_until(websocket, marker)


def test_foreign_browser_origin_is_refused(api: TestClient) -> None:
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        api.websocket_connect(STREAM, headers={"origin": "http://evil.example"}),
    ):
        pass
    assert refused.value.status_code == 403


async def test_slow_reader_is_told_about_dropped_lines() -> None:
    fanout = LogFanout(buffer_lines=3)
    fanout.setFormatter(logging.Formatter("%(message)s"))
    subscription = fanout.subscribe()
    for number in range(10):
        fanout.handle(logging.makeLogRecord({"msg": f"line {number}", "levelno": 20}))
    lines = LogService.follow(subscription)
    received = [await anext(lines) for _ in range(4)]
    assert received == [
        "[log stream: 7 lines were dropped because this client did not keep up]",
        "line 7",
        "line 8",
        "line 9",
    ]
    subscription.close()
    assert fanout.subscriber_count == 0
