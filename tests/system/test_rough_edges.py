"""Hardware's rough edges, through the real service on the simulator: Bluetooth
bursts, the bus's bandwidth, error frames and bus-off, a silent STU, RSSI over
distance and a draining battery. Each: the service's reaction (clear errors,
readable files, exact loss, nothing hung)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.sync.client import connect as connect_ws

from icoapi.simulator import SensorDevice, Simulator
from icoapi.simulator.streamer import Streamer
from icoapi.system.bus_health import BUS_OFF_DETAIL
from tests.measurement.helpers import (
    connect_device,
    instructions,
    measurement_file,
    read_table,
    start,
    wait_idle,
)
from tests.support import AppServices, LiveServer

NO_RESPONSE = {"detail": "The CAN network did not respond to the request."}
UNREACHABLE = {"detail": "STH could not be connected and must be out of reach or discharged."}


def streaming(device: SensorDevice, frames: int) -> Any:
    """A predicate: the device's stream has sent ``frames`` frames."""
    return lambda: device.streamer is not None and device.streamer.frames_sent >= frames


def run_until(
    simulator: Simulator, client: httpx.Client, device: SensorDevice, frames: int
) -> Streamer:
    """Start an open-ended measurement, let ``frames`` frames be sent."""
    assert simulator.wait_until(streaming(device, frames), timeout=30)
    streamer = device.streamer
    assert streamer is not None
    return streamer


def file_frames(server: LiveServer, name: str) -> tuple[int, dict[str, Any], Any]:
    """Frames, attributes and rows of a one-channel measurement file."""
    rows, attributes, _ = read_table(measurement_file(server, name))
    return len(rows) // 3, attributes, rows


def test_bursts_keep_loss_and_rate_exact(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    # Slow, jittery connection events: 10-30 ms of frames arrive at once.
    simulator.faults.burst_interval = 0.02
    simulator.faults.burst_jitter = 0.01
    mac = simulator.config.devices[0].mac
    device = simulator.device(mac)
    connect_device(client, mac)
    name = start(client, instructions(mac, time=None))["data"]["name"]
    streamer = run_until(simulator, client, device, 3000)
    # More than a counter cycle lost in one piece: only the timestamps tell it.
    simulator.faults.drop_next(300)
    assert simulator.wait_until(lambda: simulator.faults.pending_drops == 0, timeout=30)
    assert simulator.wait_until(streaming(device, streamer.frames_sent + 3000), timeout=30)
    assert client.post("/measurement/stop").status_code == 200
    wait_idle(sim_server)
    frames, attributes, rows = file_frames(sim_server, name)
    assert attributes["lost_frames"] == streamer.lost_between(0, frames - 1) == 300
    # No "sample rate mismatch": the rate check sees through the bursts.
    assert attributes["measurement_status"] == "stopped"
    # Bursts: many frames share a delivery, so timestamps are uneven.
    gaps = np.diff(rows["timestamp"][::3].astype(np.int64))
    assert gaps.max() > 10 * 1e6 / 3174.6


def test_bus_bandwidth_loses_what_the_bus_cannot_carry(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    # Oversampling 16: 12,698 frames/s, about twice what 1 Mbit/s carries.
    adc = {"prescaler": 2, "acquisition_time": 8, "oversampling_rate": 16}
    body = instructions(mac, time=2, adc={**adc, "reference_voltage": 3.3})
    name = start(client, body)["data"]["name"]
    wait_idle(sim_server)
    streamer = simulator.device(mac).last_stream
    assert streamer is not None
    frames, attributes, _ = file_frames(sim_server, name)
    assert streamer.delivery.frames_overflowed > 0
    assert attributes["lost_frames"] == streamer.lost_between(0, frames - 1)
    # What arrived is what the bus carries: at most 6250 frames/s of 160 bits.
    assert frames / 2 <= 6250 * 1.02
    assert attributes["dataloss"] == pytest.approx(1 - 6250 / 12698, abs=0.03)
    assert not str(attributes["measurement_status"]).startswith("error: sample rate")


def test_error_frames_are_counted_and_harmless(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    simulator.faults.error_frame_rate = 100
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    name = start(client, instructions(mac, time=1))["data"]["name"]
    wait_idle(sim_server)
    system = AppServices(sim_server.app).system
    assert system.bus_errors > 20
    _, attributes, _ = file_frames(sim_server, name)
    assert attributes["lost_frames"] == 0
    assert attributes["measurement_status"] == "completed"
    assert client.get("/state").json()["can_ready"] is True


def state(client: httpx.Client) -> dict[str, Any]:
    result: dict[str, Any] = client.get("/state").json()
    return result


def wait_for_state(client: httpx.Client, ready: bool, timeout: float = 20) -> dict[str, Any]:
    """Poll ``/state`` until ``can_ready`` is ``ready`` (the bus-off is reported by
    the controller's error frame, which arrives on its own schedule)."""
    deadline = time.monotonic() + timeout
    while (current := state(client))["can_ready"] is not ready:
        assert time.monotonic() < deadline, current
        time.sleep(0.02)
    return current


def test_bus_off_during_a_measurement_recovers_by_itself(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    simulator.faults.bus_off_after = 1.0
    simulator.faults.bus_off_recovery = 1.0
    mac = simulator.config.devices[0].mac
    device = simulator.device(mac)
    connect_device(client, mac)
    name = start(client, instructions(mac, time=None))["data"]["name"]
    reported = wait_for_state(client, ready=False)
    assert reported["link_error"] == BUS_OFF_DETAIL
    # Requests are refused at once with the reason, not after retries.
    began = time.monotonic()
    refused = client.get("/stu")
    assert (refused.status_code, refused.json()) == (503, {"detail": BUS_OFF_DETAIL})
    assert time.monotonic() - began < 1
    # The controller restarts by itself; the stream goes on with the gap counted.
    wait_for_state(client, ready=True)
    assert state(client)["link_error"] is None
    streamer = device.streamer
    assert streamer is not None
    assert simulator.wait_until(streaming(device, streamer.frames_sent + 2000), timeout=30)
    assert client.post("/measurement/stop").status_code == 200
    wait_idle(sim_server)
    frames, attributes, _ = file_frames(sim_server, name)
    lost = streamer.lost_between(0, frames - 1)
    assert lost > 1000  # about a second of frames
    assert attributes["lost_frames"] == lost
    assert attributes["measurement_status"] == "stopped"
    assert client.get("/stu").status_code == 200
    log = AppServices(sim_server.app).paths.log_file.read_text()
    assert "CAN bus-off" in log
    assert "CAN controller restarted after bus-off" in log


# The service does not reopen the link itself here (CAN_BUS_OFF_RESET=0).
@pytest.mark.settings(CAN_STREAM_TIMEOUT=1.0, CAN_BUS_OFF_RESET=0)
def test_lasting_bus_off_ends_the_measurement_and_reset_can_recovers(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    simulator.faults.bus_off_after = 1.0
    simulator.faults.bus_off_recovery = None  # only reopening the adapter helps
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    name = start(client, instructions(mac, time=None))["data"]["name"]
    began = time.monotonic()
    wait_idle(sim_server)
    assert time.monotonic() - began < 15  # nothing hung
    frames, attributes, _ = file_frames(sim_server, name)
    assert frames > 2000  # what came before the bus-off is kept
    assert str(attributes["measurement_status"]).startswith("error")
    assert state(client)["link_error"] == BUS_OFF_DETAIL
    refused = client.put("/sth/connect", json={"mac_address": mac})
    assert refused.status_code == 503
    assert client.put("/reset-can").status_code == 200
    assert state(client)["can_ready"] is True
    # The reopened link works (a fresh simulator: the old one stopped with it).
    assert client.get("/stu").status_code == 200
    connect_device(client, mac)


@pytest.mark.settings(CAN_BUS_OFF_RESET=0)
def test_bus_off_is_pushed_to_state_clients(sim_server: LiveServer, simulator: Simulator) -> None:
    simulator.faults.bus_off_recovery = 0.5
    with connect_ws(f"{sim_server.ws_url}/api/v1/state") as socket:
        first = json.loads(socket.recv(timeout=10))
        assert first["data"]["can_ready"] is True
        simulator.bus_off()
        off = json.loads(socket.recv(timeout=10))["data"]
        assert (off["can_ready"], off["link_error"]) == (False, BUS_OFF_DETAIL)
        on = json.loads(socket.recv(timeout=10))["data"]
        assert (on["can_ready"], on["link_error"]) == (True, None)


@pytest.mark.settings(CAN_BUS_OFF_RESET=0.5)
def test_service_reopens_a_link_that_stays_bus_off(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    simulator.faults.bus_off_recovery = None  # the controller does not restart itself
    simulator.bus_off()
    assert wait_for_state(client, ready=False)["link_error"] == BUS_OFF_DETAIL
    wait_for_state(client, ready=True)
    assert state(client)["link_error"] is None
    assert client.get("/stu").status_code == 200
    log = AppServices(sim_server.app).paths.log_file.read_text()
    assert "The CAN controller stayed bus-off for 0.5 s: reopening the link" in log


@pytest.mark.settings(CAN_STREAM_TIMEOUT=1.0, CAN_REQUEST_ATTEMPTS=2)
def test_silent_stu(sim_server: LiveServer, client: httpx.Client, simulator: Simulator) -> None:
    mac = simulator.config.devices[0].mac
    device = simulator.device(mac)
    connect_device(client, mac)
    name = start(client, instructions(mac, time=None))["data"]["name"]
    run_until(simulator, client, device, 1000)
    simulator.faults.stu_silent = True
    wait_idle(sim_server)
    frames, attributes, _ = file_frames(sim_server, name)
    assert frames >= 1000
    assert "StreamingTimeoutError" in str(attributes["measurement_status"])
    began = time.monotonic()
    unanswered = client.get("/stu/connected")
    assert (unanswered.status_code, unanswered.json()) == (502, NO_RESPONSE)
    assert time.monotonic() - began < 10  # two attempts, not the library's ten
    # The service did not lose track: the device is gone, the STU is there.
    assert state(client)["link_state"] == "stu_connected"
    # Back to life, the STU still holds the Bluetooth link the service gave up:
    # an STU reset clears it, and the device connects again.
    simulator.faults.stu_silent = False
    assert client.put("/stu/reset").status_code == 200
    assert client.get("/stu/connected").json() is False
    connect_device(client, mac)


def scan_rssi(client: httpx.Client, mac: str) -> int | None:
    devices = client.get("/sth").json()
    return next((device["rssi"] for device in devices if device["mac_address"] == mac), None)


@pytest.mark.settings(CAN_STREAM_TIMEOUT=1.0, CAN_DEVICE_SEARCH_TIMEOUT=0.5)
def test_rssi_varies_and_drops_with_distance(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    simulator.faults.rssi_noise = 3.0
    mac = simulator.config.devices[0].mac
    device = simulator.device(mac)
    device.distance = 1.0
    near = [scan_rssi(client, mac) for _ in range(5)]
    assert all(value is not None and abs(value - device.rssi) <= 12 for value in near)
    assert len(set(near)) > 1  # readings vary
    device.distance = 20.0  # 32.5 dB weaker
    far = scan_rssi(client, mac)
    assert far is not None and abs(far - (device.rssi - 32.5)) <= 12
    # Out of range: not listed, not connectable.
    device.distance = 500.0
    assert scan_rssi(client, mac) is None
    response = client.put("/sth/connect", json={"mac_address": mac})
    assert (response.status_code, response.json()) == (404, UNREACHABLE)
    # Walking away during a measurement ends it; the file keeps what came.
    device.distance = 1.0
    connect_device(client, mac)
    name = start(client, instructions(mac, time=None))["data"]["name"]
    run_until(simulator, client, device, 1000)
    device.distance = 500.0
    wait_idle(sim_server)
    frames, attributes, _ = file_frames(sim_server, name)
    assert frames >= 1000
    assert str(attributes["measurement_status"]).startswith("error")
    assert state(client)["link_state"] == "stu_connected"


@pytest.mark.settings(CAN_STREAM_TIMEOUT=1.0)
def test_battery_drains_until_the_device_switches_off(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    device = simulator.device(mac)
    connect_device(client, mac)
    first = client.get("/sth/supply-voltage").json()["supply_voltage"]
    device.battery_drain = 0.4  # volts per second: a day in a few seconds
    assert simulator.wait_until(lambda: device.supply_voltage < first - 0.1, timeout=5)
    second = client.get("/sth/supply-voltage").json()["supply_voltage"]
    assert second < first - 0.1
    name = start(client, instructions(mac, time=None))["data"]["name"]
    # Below the cut-off the device switches off: the measurement ends with an
    # error and a readable file.
    wait_idle(sim_server)
    assert not device.reachable
    frames, attributes, _ = file_frames(sim_server, name)
    assert frames > 0
    assert str(attributes["measurement_status"]).startswith("error")
    assert state(client)["link_state"] == "stu_connected"
    response = client.put("/sth/connect", json={"mac_address": mac})
    assert response.status_code == 404


def test_an_adapter_that_stops_receiving_is_reported(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    # The adapter goes away behind the service's back (unplugged): the reader
    # thread fails, the link is reported down, and PUT /reset-can reopens it.
    AppServices(sim_server.app).system._bus.shutdown()
    deadline = time.monotonic() + 10
    while (current := state(client))["link_state"] != "disconnected":
        assert time.monotonic() < deadline, current
        time.sleep(0.02)
    assert "CanOperationError" in current["link_error"]
    assert current["device"] is None
    assert client.get("/stu").status_code == 503
    assert client.put("/reset-can").status_code == 200
    assert state(client)["link_state"] == "stu_connected"
    connect_device(client, mac)
