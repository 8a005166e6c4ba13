"""The service on a TCP socketcand link to a simulator in another process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support import LiveServer, make_settings

NO_RESPONSE = {"detail": "The CAN network did not respond to the request."}


READY = re.compile(r"ready: socketcand on [\d.]+:(?P<port>\d+)")


def start_simulator(port: int = 0) -> tuple[subprocess.Popen[str], int]:
    """The simulator as a socketcand server in its own process, and its port
    (port 0: the system picks a free one, so parallel tests never collide)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "icoapi.simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--scan-delay",
            "0.05",
            "--connect-delay",
            "0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        match = READY.search(line)
        if match:
            return process, int(match["port"])
    raise AssertionError("simulator did not start")


def test_socketcand_link_and_recovery(tmp_path: Path, live_server_factory: Any) -> None:
    simulator, simulator_port = start_simulator()
    try:
        settings = make_settings(
            tmp_path / "data",
            CAN_INTERFACE="socketcand",
            CAN_CHANNEL="can0",
            CAN_HOST="127.0.0.1",
            CAN_PORT=simulator_port,
            # Requests to the vanished simulator fail after 3 attempts, not 10.
            CAN_REQUEST_ATTEMPTS=3,
        )
        server: LiveServer = live_server_factory(settings)
        with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as http:
            assert http.get("/state").json()["link_state"] == "stu_connected"
            devices = http.get("/sth").json()
            assert len(devices) == 3
            mac = devices[0]["mac_address"]
            assert http.put("/sth/connect", json={"mac_address": mac}).status_code == 200
            assert http.get("/sth/read-adc").status_code == 200

            # The simulator (think: the CAN adapter) goes away.
            simulator.kill()
            simulator.wait(10)
            failed = http.get("/stu")
            assert failed.status_code in (502, 503)
            if failed.status_code == 502:
                assert failed.json() == NO_RESPONSE
            else:
                assert "CAN link is not available" in failed.json()["detail"]
                state = http.get("/state").json()
                assert (state["link_state"], state["device"]) == ("disconnected", None)
                assert state["link_error"]

            # It comes back; PUT /reset-can reopens the link.
            simulator, _ = start_simulator(simulator_port)
            assert http.put("/reset-can").status_code == 200
            assert http.get("/stu").status_code == 200
            assert len(http.get("/sth").json()) == 3
    finally:
        simulator.kill()
        simulator.wait(10)
