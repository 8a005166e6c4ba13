"""The systemd notify protocol, against a real service process with a real
AF_UNIX datagram socket as ``NOTIFY_SOCKET``."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from icoapi.core.events import EventBus, MeasurementChanged
from icoapi.core.systemd import SystemdAgent, SystemdNotifier, watchdog_interval
from tests.measurement.helpers import instructions
from tests.metrics.support import NotifyListener
from tests.support import free_port, spawn_service


@pytest.fixture
def socket_folder() -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="icoapi-notify-") as folder:
        yield Path(folder)


def _stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM as systemd sends it; the exit status (uvicorn ends a graceful
    shutdown by re-raising the signal: -SIGTERM, which systemd counts as clean)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def test_ready_watchdog_status_and_stopping(tmp_path: Path, socket_folder: Path) -> None:
    listener = NotifyListener(str(socket_folder / "notify"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = spawn_service(
        tmp_path,
        port,
        NOTIFY_SOCKET=str(socket_folder / "notify"),
        WATCHDOG_USEC="400000",  # a ping every 0.2 s
    )
    try:
        listener.wait_for("READY=1")
        # READY comes once the server listens: the next request is answered.
        assert httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200
        assert "STATUS=idle" in listener.received
        started = time.monotonic()
        for _ in range(3):
            listener.wait_for("WATCHDOG=1", timeout=10)
        assert time.monotonic() - started < 10

        with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as http:
            devices = http.get("/sth").json()
            mac = devices[0]["mac_address"]
            assert http.put("/sth/connect", json={"mac_address": mac}).status_code == 200
            body = instructions(mac, name="notify-run", time=1)
            assert http.post("/measurement/start", json=body).status_code == 200
            status = listener.wait_for("STATUS=measuring notify-run", prefix=True)
            assert status.startswith("STATUS=measuring notify-run__")
            listener.wait_for("STATUS=idle")  # the run ended
        assert _stop(process) in (0, -signal.SIGTERM)
        listener.wait_for("STOPPING=1", timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        listener.close()


def test_abstract_namespace_socket(tmp_path: Path) -> None:
    name = f"icoapi-test-{uuid.uuid4().hex}"
    listener = NotifyListener("\0" + name)
    port = free_port()
    process = spawn_service(tmp_path, port, NOTIFY_SOCKET=f"@{name}")
    try:
        listener.wait_for("READY=1")
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).status_code == 200
        assert _stop(process) in (0, -signal.SIGTERM)
        listener.wait_for("STOPPING=1", timeout=5)
        # Without WATCHDOG_USEC no pings are sent.
        assert "WATCHDOG=1" not in listener.received + listener.pending()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        listener.close()


def test_nothing_without_notify_socket() -> None:
    notifier = SystemdNotifier.from_environment({})
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "3000000"}) == 1.5
    # The watchdog is meant for another process (systemd's WATCHDOG_PID).
    assert watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}) is None


def test_pings_come_from_the_event_loop(socket_folder: Path) -> None:
    """A blocked event loop sends no pings, so systemd's watchdog restarts it."""
    listener = NotifyListener(str(socket_folder / "notify"))
    notifier = SystemdNotifier(str(socket_folder / "notify"))
    states = ["idle"]

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        events = EventBus()
        agent = SystemdAgent(notifier, lambda: states[-1], events, interval=0.02)
        agent.start()
        await asyncio.sleep(0.2)
        running = listener.pending()
        time.sleep(0.5)  # noqa: ASYNC251 - the loop is blocked: nothing may be sent meanwhile
        blocked = listener.pending()
        states.append("measuring x")
        events.publish(MeasurementChanged())
        await asyncio.sleep(0.2)
        resumed = listener.pending()
        await agent.stop()
        return running, blocked, resumed

    try:
        running, blocked, resumed = asyncio.run(scenario())
    finally:
        notifier.close()
        listener.close()
    assert running[0] == "STATUS=idle"
    assert running.count("WATCHDOG=1") >= 3
    assert blocked == []
    assert resumed.count("WATCHDOG=1") >= 3
    assert resumed.count("STATUS=measuring x") == 1
