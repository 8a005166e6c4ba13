"""Every error case of the hardware endpoints, with status and body."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from websockets.sync.client import connect as connect_ws

from icoapi.api import create_app
from icoapi.simulator import Simulator
from icoapi.system.service import ICOSystem
from icoapi.system.timeouts import HardwareTimeouts
from tests.support import AppServices, make_settings, simulator_of

INCORRECT_STATE = {"detail": "Incorrect request for current ICOtronic system state."}
UNREACHABLE = {"detail": "STH could not be connected and must be out of reach or discharged."}
NO_RESPONSE = {"detail": "The CAN network did not respond to the request."}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/sth/connect", {"mac_address": "not-a-mac"}, "mac_address"),
        ("/sth/connect", {"mac_address": "08-6B-D7-01-DE"}, "mac_address"),
        ("/sth/rename", {"mac_address": "08-6B-D7-01-DE-81", "new_name": "NineBytes"}, "new_name"),
        ("/sth/rename", {"mac_address": "08-6B-D7-01-DE-81", "new_name": "two words"}, "new_name"),
        ("/sth/rename", {"mac_address": "08-6B-D7-01-DE-81", "new_name": ""}, "new_name"),
        (
            "/sth/write-adc",
            {
                "prescaler": 0,
                "acquisition_time": 8,
                "oversampling_rate": 64,
                "reference_voltage": 3.3,
            },
            "prescaler",
        ),
        (
            "/sth/write-adc",
            {
                "prescaler": 2,
                "acquisition_time": 5,
                "oversampling_rate": 64,
                "reference_voltage": 3.3,
            },
            "acquisition_time",
        ),
        (
            "/sth/write-adc",
            {
                "prescaler": 2,
                "acquisition_time": 8,
                "oversampling_rate": 3,
                "reference_voltage": 3.3,
            },
            "oversampling_rate",
        ),
        (
            "/sth/write-adc",
            {
                "prescaler": 2,
                "acquisition_time": 8,
                "oversampling_rate": 64,
                "reference_voltage": 4.0,
            },
            "reference_voltage",
        ),
    ],
)
def test_invalid_input_is_422(
    client: httpx.Client, path: str, body: dict[str, object], field: str
) -> None:
    response = client.put(path, json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(field in item["loc"] for item in detail)
    assert all(item["msg"] for item in detail)


def test_state_errors(client: httpx.Client, simulator: Simulator) -> None:
    assert client.put("/sth/disconnect").status_code == 400
    assert client.put("/sth/disconnect").json() == INCORRECT_STATE
    assert client.get("/sth/read-adc").status_code == 404
    assert client.get("/sth/read-adc").json() == UNREACHABLE
    write = client.put(
        "/sth/write-adc",
        json={
            "prescaler": 2,
            "acquisition_time": 8,
            "oversampling_rate": 64,
            "reference_voltage": 3.3,
        },
    )
    assert (write.status_code, write.json()) == (404, UNREACHABLE)
    assert client.get("/sth/supply-voltage").status_code == 404

    mac = simulator.config.devices[0].mac
    assert client.put("/sth/connect", json={"mac_address": mac}).status_code == 200
    second = client.put("/sth/connect", json={"mac_address": simulator.config.devices[1].mac})
    assert (second.status_code, second.json()) == (400, INCORRECT_STATE)
    other = client.put(
        "/sth/rename", json={"mac_address": simulator.config.devices[1].mac, "new_name": "x1"}
    )
    assert other.status_code == 400
    assert client.put("/sth/disconnect").status_code == 200


def test_unknown_device_is_404(sim_server_factory: Any) -> None:
    # The library alone would look for the device for 20 s; the service stops
    # after CAN_DEVICE_SEARCH_TIMEOUT.
    server = sim_server_factory(CAN_DEVICE_SEARCH_TIMEOUT=0.5)
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as client:
        response = client.put("/sth/connect", json={"mac_address": "01-02-03-04-05-06"})
        assert (response.status_code, response.json()) == (404, UNREACHABLE)
        assert client.get("/state").json()["link_state"] == "stu_connected"
        # The search left the link usable: a present device connects.
        mac = simulator_of(server.app).config.devices[0].mac
        assert client.put("/sth/connect", json={"mac_address": mac}).status_code == 200


def test_status_reads_do_not_wait_for_a_device_search(sim_server_factory: Any) -> None:
    server = sim_server_factory(CAN_DEVICE_SEARCH_TIMEOUT=20)
    system = AppServices(server.app).system
    simulator: Simulator = simulator_of(server.app)
    # The device is out of reach until the status reads are done.
    mac = simulator.config.devices[0].mac
    simulator.faults.hidden_devices.add(mac)
    base = f"{server.url}/api/v1"
    with (
        ThreadPoolExecutor(1) as pool,
        httpx.Client(base_url=base, timeout=60) as client,
        connect_ws(f"{server.ws_url}/api/v1/state") as socket,
    ):
        assert json.loads(socket.recv(timeout=10))["message"] == "state"
        searching = pool.submit(client.put, "/sth/connect", json={"mac_address": mac})
        # Wait until the search holds the hardware lock.
        assert wait_until_locked(system)
        with httpx.Client(base_url=base, timeout=60) as reader:
            assert reader.get("/stu/connected").json() is False
            state = reader.get("/state").json()
            socket.send(json.dumps({"message": "get_state"}))
            pushed = json.loads(socket.recv(timeout=10))
        # All three answered while the search still held the lock: the device
        # is still hidden, so the search cannot have ended.
        assert not searching.done()
        assert system._lock.locked()
        assert state["link_state"] == "stu_connected"
        assert pushed["message"] == "state"
        assert pushed["data"]["link_state"] == "stu_connected"
        # The device comes into reach: the same search finds and connects it.
        simulator.faults.hidden_devices.clear()
        assert searching.result(timeout=60).status_code == 200
        assert client.get("/stu/connected").json() is True


def wait_until_locked(system: ICOSystem, timeout: float = 10) -> bool:
    """True once the system's hardware lock is taken, False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not system._lock.locked():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_unanswered_request_is_502_and_service_recovers(sim_server_factory: Any) -> None:
    from icoapi.simulator.protocol import Block

    server = sim_server_factory(CAN_REQUEST_ATTEMPTS=2)
    simulator: Simulator = simulator_of(server.app)
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as client:
        # The STU stops answering EEPROM/product-data and Bluetooth requests.
        simulator.faults.ignore.add((Block.SYSTEM, 0x0B, 17))
        response = client.get("/stu")
        assert (response.status_code, response.json()) == (502, NO_RESPONSE)
        # The request was sent exactly CAN_REQUEST_ATTEMPTS times.
        unanswered = [
            request
            for request in list(simulator.requests)
            if (request.block, request.command, request.data[:1]) == (Block.SYSTEM, 0x0B, b"\x11")
            and not request.answered
        ]
        assert len(unanswered) == 2
        simulator.faults.ignore.clear()
        assert client.get("/stu").status_code == 200


def test_link_loss_mid_operation(sim_server_factory: Any) -> None:
    server = sim_server_factory(CAN_REQUEST_ATTEMPTS=3)
    simulator: Simulator = simulator_of(server.app)
    mac = simulator.config.devices[0].mac
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as client:
        assert client.put("/sth/connect", json={"mac_address": mac}).status_code == 200
        # The device drops off the Bluetooth link: its requests go unanswered.
        simulator.on_link_lost(simulator.device(mac))
        response = client.get("/sth/read-adc")
        assert (response.status_code, response.json()) == (502, NO_RESPONSE)
        # The service notices the device is gone and is usable again.
        assert client.get("/stu/connected").json() is False
        assert client.get("/state").json()["link_state"] == "stu_connected"
        assert client.put("/sth/connect", json={"mac_address": mac}).status_code == 200
        assert client.get("/sth/read-adc").status_code == 200


def test_startup_without_can(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", CAN_INTERFACE="socketcan", CAN_CHANNEL="nocan7")
    with TestClient(create_app(settings)) as http:
        assert http.get("/docs").status_code == 200
        assert http.get("/api/v1/sensor").status_code == 200
        assert http.get("/api/v1/files").status_code == 200
        state = http.get("/api/v1/state").json()
        assert state["can_ready"] is False
        assert state["link_state"] == "disconnected"
        assert state["link_error"]
        for method, path in [
            ("GET", "/stu"),
            ("GET", "/sth"),
            ("PUT", "/stu/reset"),
            ("PUT", "/sth/disconnect"),
        ]:
            response = http.request(method, f"/api/v1{path}")
            assert response.status_code == 503, path
            assert "CAN link is not available" in response.json()["detail"]
            assert "reset-can" in response.json()["detail"]
        retry = http.put("/api/v1/reset-can")
        assert retry.status_code == 503
        assert "nocan7" in retry.json()["detail"] or "Cause" in retry.json()["detail"]


def test_hardware_timeouts_follow_the_settings(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        CAN_REQUEST_TIMEOUT=7,
        CAN_REQUEST_ATTEMPTS=3,
        CAN_DEVICE_SEARCH_TIMEOUT=20,
        CAN_STREAM_TIMEOUT=1.5,
    )
    timeouts = HardwareTimeouts.from_settings(settings)
    assert (timeouts.request, timeouts.request_attempts) == (7, 3)
    assert timeouts.device_search == 20
    assert timeouts.stream_silence == 1.5
    # A connect may still connect after a search that used all its time.
    assert timeouts.connect > timeouts.device_search
    defaults = HardwareTimeouts.from_settings(make_settings(tmp_path / "d2"))
    assert (defaults.device_search, defaults.stream_silence) == (10, 5)
