"""Connection limits: half-open connections cannot use up the service's file
descriptors, request headers have a deadline, and busy connections are never
closed to make room."""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.sync.client import connect

from icoapi.api import create_app
from icoapi.core.connections import LimitLog, connection_ceiling
from tests.support import LiveServer, free_port, make_settings, spawn_service, wait_for_service

PARTIAL_REQUEST = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
DESCRIPTORS = 1024
HALF_OPEN = 1100


@contextlib.contextmanager
def open_files_limit(soft: int) -> Iterator[None]:
    """Processes started meanwhile get ``soft`` as their limit of open files
    (this process gets its own limit back afterwards)."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def half_open(port: int) -> socket.socket:
    """A connection that starts a request and never finishes its headers."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(PARTIAL_REQUEST)
    return connection


def closed_by_server(connection: socket.socket, timeout: float) -> bool:
    connection.settimeout(timeout)
    try:
        while data := connection.recv(4096):
            assert not data.startswith(b"HTTP/1.1 200"), data
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_ceiling_leaves_descriptors_for_the_service() -> None:
    assert connection_ceiling(512, 1024) == 512
    assert connection_ceiling(5000, 1024) == 768
    assert connection_ceiling(512, 256) == 192
    assert connection_ceiling(512, None) == 512
    assert connection_ceiling(512, 10) == 1


def test_half_open_connections_do_not_stop_the_service(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < HALF_OPEN + 200:
        pytest.skip(f"this process may open only {hard} files")
    if soft < HALF_OPEN + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (HALF_OPEN + 200, hard))
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    with open_files_limit(DESCRIPTORS):
        process = spawn_service(data, port)
    connections: list[socket.socket] = []
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_service(url, process)
        service = psutil.Process(process.pid)
        assert resource.prlimit(process.pid, resource.RLIMIT_NOFILE)[0] == DESCRIPTORS
        for _ in range(HALF_OPEN):
            connections.append(half_open(port))
        # Every half-open connection is still held open by this side.
        response = httpx.get(f"{url}/api/v1/health", timeout=10)
        assert response.status_code == 200
        assert service.num_fds() < DESCRIPTORS
        # Again, while they are still open: the service keeps answering.
        for _ in range(3):
            assert httpx.get(f"{url}/api/v1/health", timeout=10).status_code == 200
    finally:
        for connection in connections:
            connection.close()
        process.terminate()
        process.wait(30)
    log = (data / "logs" / "icodaq.log").read_text()
    # Logged once (the first hit), not once per connection.
    assert log.count("Connection limits hit") == 1
    assert "waiting connections (over 512 open)" in log


def test_request_headers_have_a_deadline(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ICOAPI_HEADER_TIMEOUT=0.5)
    server = LiveServer(create_app(settings))
    server.start()
    try:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow = half_open(server.port)
        started = time.monotonic()
        assert closed_by_server(slow, timeout=10)
        assert closed_by_server(silent, timeout=10)
        assert time.monotonic() - started >= 0.4
        # A kept-alive connection gets the deadline again for its next request.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as kept:
            kept.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert kept.recv(4096).startswith(b"HTTP/1.1 200")
            kept.sendall(PARTIAL_REQUEST)
            assert closed_by_server(kept, timeout=10)
        # A request that completes its headers in time is answered.
        assert httpx.get(f"{server.url}/api/v1/health", timeout=10).status_code == 200
    finally:
        server.stop()
    log = settings.log_file.read_text()
    assert "connections without request headers after 0.5 s" in log


def test_busy_connections_are_never_closed_for_room(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ICOAPI_MAX_CONNECTIONS=4)
    server = LiveServer(create_app(settings))
    server.start()
    try:
        with (
            connect(f"{server.ws_url}/api/v1/state", open_timeout=10) as first,
            connect(f"{server.ws_url}/api/v1/state", open_timeout=10) as second,
        ):
            assert first.recv(timeout=10) and second.recv(timeout=10)
            waiting = [half_open(server.port) for _ in range(2)]
            # Full: a new connection closes the one waiting longest for headers.
            assert httpx.get(f"{server.url}/api/v1/health", timeout=10).status_code == 200
            assert closed_by_server(waiting[0], timeout=10)
            waiting[1].close()
            # The WebSockets were never candidates.
            first.ping().wait(10)
            second.ping().wait(10)
            with (
                connect(f"{server.ws_url}/api/v1/state", open_timeout=10) as third,
                connect(f"{server.ws_url}/api/v1/state", open_timeout=10) as fourth,
            ):
                assert third.recv(timeout=10) and fourth.recv(timeout=10)
                # Every connection is busy: the new one is the one closed.
                with pytest.raises(httpx.TransportError):
                    httpx.get(f"{server.url}/api/v1/health", timeout=10)
    finally:
        server.stop()
    log = settings.log_file.read_text()
    # The first hit is logged at once; the second waits for the period's summary.
    assert log.count("Connection limits hit") == 1


async def test_limit_hits_are_summarised_once_per_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    log = LimitLog(interval=0.05)
    loop = asyncio.get_running_loop()
    for _ in range(3):
        log.note(loop, "half-open connections")
    assert log.lines == 1  # the first hit at once, the others wait
    when = log.next_summary_at
    assert when is not None
    summarised = loop.create_future()
    loop.call_at(when + 0.001, summarised.set_result, None)
    await asyncio.wait_for(summarised, 10)
    assert log.lines == 2
    assert log.next_summary_at is None
    messages = [r.getMessage() for r in caplog.records if "limits hit" in r.getMessage()]
    assert messages[0] == "Connection limits hit: closed 1 half-open connections"
    assert messages[1].endswith(": closed 2 half-open connections")
