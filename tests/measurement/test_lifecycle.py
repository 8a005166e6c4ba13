"""Measurement lifecycle: late clients, disconnect after, shutdown mid-run."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import httpx

from icoapi.simulator import Simulator
from tests.measurement.helpers import (
    StreamRecorder,
    connect_device,
    instructions,
    measurement_file,
    read_table,
    start,
    wait_idle,
)
from tests.support import LiveServer, simulator_of


def test_client_connecting_during_run(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    name = start(client, instructions(mac, time=3))["data"]["name"]
    device = simulator.device(mac)
    assert simulator.wait_until(
        lambda: device.streamer is not None and device.streamer.frames_sent > 3000, timeout=30
    )
    late = StreamRecorder(f"{sim_server.ws_url}/api/v1/measurement/stream").start()
    wait_idle(sim_server)
    late.wait()
    rows, _, _ = read_table(measurement_file(sim_server, name))
    assert late.closed_normally
    # It joined late: it has the rest of the measurement, without gaps.
    assert 0 < len(late.samples) < len(rows)
    counters = [sample["counter"] for sample in late.samples[::3]]
    steps = {(b - a) % 256 for a, b in pairwise(counters)}
    assert steps == {1}


def test_disconnect_after_measurement(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    start(client, instructions(mac, time=1, disconnect_after_measurement=True))
    wait_idle(sim_server)
    state = client.get("/state").json()
    assert state["link_state"] == "stu_connected"
    assert state["device"] is None
    assert simulator.connected_device is None


def test_shutdown_stops_a_running_measurement(sim_server_factory: Any) -> None:
    server = sim_server_factory()
    simulator = simulator_of(server.app)
    mac = simulator.config.devices[0].mac
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as http:
        connect_device(http, mac)
        name = start(http, instructions(mac, time=None))["data"]["name"]
    device = simulator.device(mac)
    assert simulator.wait_until(
        lambda: device.streamer is not None and device.streamer.frames_sent > 1000, timeout=30
    )
    server.stop()
    rows, attributes, _ = read_table(measurement_file(server, name))
    assert len(rows) >= 3000
    assert attributes["measurement_status"] == "stopped"
    # The device was disconnected and the simulator stopped with the link.
    assert simulator.connected_device is None


def test_update_rate_is_messages_per_second(sim_server_factory: Any) -> None:
    server = sim_server_factory(WEBSOCKET_UPDATE_RATE=4)
    simulator = simulator_of(server.app)
    mac = simulator.config.devices[0].mac
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as http:
        connect_device(http, mac)
        stream = StreamRecorder(f"{server.ws_url}/api/v1/measurement/stream").start()
        name = start(http, instructions(mac, time=2))["data"]["name"]
        wait_idle(server)
        stream.wait()
    rows, _, _ = read_table(measurement_file(server, name))
    # Few, large messages, and still every sample.
    assert stream.messages <= 4 * 3 + 5
    assert len(stream.samples) == len(rows)
