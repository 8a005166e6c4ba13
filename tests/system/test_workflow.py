"""The full device workflow over real HTTP against the simulator."""

from __future__ import annotations

import httpx

from icoapi.simulator import Simulator
from icoapi.simulator.protocol import Block, Bluetooth, System
from tests.measurement.helpers import instructions, wait_idle
from tests.support import LiveServer

INCORRECT_STATE = {"detail": "Incorrect request for current ICOtronic system state."}
UNREACHABLE = {"detail": "STH could not be connected and must be out of reach or discharged."}


def connect(client: httpx.Client, mac: str) -> None:
    response = client.put("/sth/connect", json={"mac_address": mac})
    assert response.status_code == 200, response.text
    assert response.json() is None


def test_device_workflow(client: httpx.Client, simulator: Simulator) -> None:
    stu = client.get("/stu")
    assert stu.status_code == 200
    assert stu.json() == [
        {"name": "STU 1", "device_number": 1, "mac_address": simulator.config.stu_mac}
    ]
    assert client.get("/stu/connected").json() is False

    devices = client.get("/sth").json()
    expected = {(d.name, d.mac, d.rssi) for d in simulator.config.devices}
    assert {(d["name"], d["mac_address"], d["rssi"]) for d in devices} == expected
    assert sorted(d["device_number"] for d in devices) == list(range(len(expected)))

    target = simulator.config.devices[1]
    connect(client, target.mac)
    assert client.get("/stu/connected").json() is True
    state = client.get("/state").json()
    assert state["link_state"] == "sensor_connected"
    assert state["device"] == {"name": target.name, "mac_address": target.mac}

    renamed = client.put("/sth/rename", json={"mac_address": target.mac, "new_name": "Spindle"})
    assert renamed.status_code == 200
    assert renamed.json() == {"name": "Spindle", "old_name": target.name, "mac_address": target.mac}

    assert client.get("/sth/read-adc").json() == {
        "prescaler": 2,
        "acquisition_time": 8,
        "oversampling_rate": 64,
        "reference_voltage": 3.3,
    }
    new_adc = {
        "prescaler": 3,
        "acquisition_time": 16,
        "oversampling_rate": 256,
        "reference_voltage": 1.8,
    }
    assert client.put("/sth/write-adc", json=new_adc).status_code == 200
    assert client.get("/sth/read-adc").json() == new_adc
    # null fields take the library defaults
    defaults = {
        "prescaler": None,
        "acquisition_time": None,
        "oversampling_rate": None,
        "reference_voltage": None,
    }
    assert client.put("/sth/write-adc", json=defaults).status_code == 200
    assert client.get("/sth/read-adc").json()["oversampling_rate"] == 64

    voltage = client.get("/sth/supply-voltage").json()
    assert 3.0 < voltage["supply_voltage"] < 4.3
    assert voltage["unit"] == "V"
    assert voltage["timestamp_utc_iso"].endswith("+00:00")

    assert client.put("/sth/disconnect").json() is None
    assert client.get("/stu/connected").json() is False
    assert client.get("/state").json()["device"] is None

    # The new name is stored on the device: it survives a reconnect.
    connect(client, target.mac)
    assert client.get("/state").json()["device"]["name"] == "Spindle"
    back = client.put("/sth/rename", json={"mac_address": target.mac, "new_name": target.name})
    assert back.json()["old_name"] == "Spindle"
    client.put("/sth/disconnect")


def test_rename_while_only_stu_connected(client: httpx.Client, simulator: Simulator) -> None:
    target = simulator.config.devices[0]
    response = client.put("/sth/rename", json={"mac_address": target.mac, "new_name": "Drill"})
    assert response.status_code == 200
    assert response.json()["old_name"] == target.name
    # It connected for the rename and disconnected again.
    assert client.get("/state").json()["link_state"] == "stu_connected"
    assert simulator.device(target.mac).name == "Drill"


def test_stu_reset(client: httpx.Client, simulator: Simulator) -> None:
    assert client.put("/stu/reset").json() is None
    assert client.get("/state").json()["link_state"] == "stu_connected"
    assert len(client.get("/sth").json()) == 3


def test_stu_reset_with_a_device_connected(client: httpx.Client, simulator: Simulator) -> None:
    target = simulator.config.devices[0]
    connect(client, target.mac)
    # A connected device does not advertise: another browser cannot find it.
    assert target.mac not in {d["mac_address"] for d in client.get("/sth").json()}
    simulator.requests.clear()

    response = client.put("/stu/reset")

    assert (response.status_code, response.json()) == (200, None)
    state = client.get("/state").json()
    assert (state["link_state"], state["device"]) == ("stu_connected", None)
    assert simulator.connected_device is None
    # Cleanly: Bluetooth deactivated (the library's disconnect), then the reset.
    system = [r for r in simulator.requests if r.block == Block.SYSTEM]
    kinds = [
        "deactivate"
        if r.command == System.BLUETOOTH and r.data[:1] == bytes([Bluetooth.DEACTIVATE])
        else "reset"
        if r.command == System.RESET
        else "other"
        for r in system
    ]
    assert "deactivate" in kinds and "reset" in kinds
    assert kinds.index("deactivate") < kinds.index("reset")
    assert client.get("/stu/connected").json() is False
    # The device can be found and connected again.
    assert target.mac in {d["mac_address"] for d in client.get("/sth").json()}
    connect(client, target.mac)
    assert client.get("/state").json()["device"]["mac_address"] == target.mac


def test_stu_reset_refused_during_a_measurement(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect(client, mac)
    started = client.post("/measurement/start", json=instructions(mac, time=None))
    assert started.status_code == 200, started.text
    try:
        response = client.put("/stu/reset")
        assert (response.status_code, response.json()) == (400, INCORRECT_STATE)
        assert simulator.connected_device is not None
        assert simulator.devices[0].streaming
    finally:
        assert client.post("/measurement/stop").status_code == 200
    wait_idle(sim_server)
    assert client.get("/state").json()["link_state"] == "sensor_connected"


def test_reset_can_reopens_the_link(client: httpx.Client, simulator: Simulator) -> None:
    connect(client, simulator.config.devices[0].mac)
    assert client.put("/reset-can").status_code == 200
    state = client.get("/state").json()
    assert state["link_state"] == "stu_connected"
    assert state["device"] is None
    assert client.get("/stu").status_code == 200
    assert len(client.get("/sth").json()) == 3
