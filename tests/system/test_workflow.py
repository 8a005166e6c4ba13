"""The full device workflow over real HTTP against the simulator."""

from __future__ import annotations

import httpx

from icoapi.simulator import Simulator

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
    connect(client, simulator.config.devices[0].mac)
    # Not allowed with a sensor device connected (reference behaviour).
    assert client.put("/stu/reset").status_code == 400
    assert client.put("/stu/reset").json() == INCORRECT_STATE


def test_reset_can_reopens_the_link(client: httpx.Client, simulator: Simulator) -> None:
    connect(client, simulator.config.devices[0].mac)
    assert client.put("/reset-can").status_code == 200
    state = client.get("/state").json()
    assert state["link_state"] == "stu_connected"
    assert state["device"] is None
    assert client.get("/stu").status_code == 200
    assert len(client.get("/sth").json()) == 3
