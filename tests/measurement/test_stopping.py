"""Ending a measurement: a stop during a stall, a device that ignores stop, and
the last samples reaching stream clients before the stop is verified."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from icoapi.simulator import Simulator
from icoapi.simulator.protocol import Block, Streaming
from tests.measurement.helpers import (
    StreamRecorder,
    connect_device,
    instructions,
    measurement_file,
    read_table,
    start,
    wait_idle,
)
from tests.support import LiveServer

STOP_REQUEST = (Block.STREAMING, Streaming.DATA, 0x80)  # streaming format with 0 sets


@pytest.mark.settings(CAN_STREAM_TIMEOUT=30)
def test_stop_during_a_stall_does_not_wait_for_the_stream_timeout(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    device = simulator.device(mac)
    name = start(client, instructions(mac, time=None))["data"]["name"]
    assert simulator.wait_until(
        lambda: device.streamer is not None and device.streamer.frames_sent >= 1000, timeout=30
    )
    simulator.faults.stall = True
    try:
        streamer = device.streamer
        assert streamer is not None
        stalled_at = streamer.frames_generated
        # The stall has begun once frames are generated but none sent.
        assert simulator.wait_until(lambda: streamer.frames_generated > stalled_at, timeout=30)
        began = time.monotonic()
        assert client.post("/measurement/stop").status_code == 200
        took = time.monotonic() - began
    finally:
        simulator.faults.stall = False
    # Far below the 30 s stream timeout: the stop did not wait for a frame.
    assert took < 10
    wait_idle(sim_server)
    rows, attributes, _ = read_table(measurement_file(sim_server, name))
    assert attributes["measurement_status"] == "stopped"
    assert len(rows) >= 3000


def test_device_that_ignores_stop_is_stopped_again_before_it_is_given_back(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    device = simulator.device(mac)
    simulator.faults.ignore = {STOP_REQUEST}
    stream = StreamRecorder(f"{sim_server.ws_url}/api/v1/measurement/stream").start()
    try:
        start(client, instructions(mac, time=1))
        # The run reported it (the file is being closed): now the device listens again.
        assert simulator.wait_until(lambda: bool(stream.errors), timeout=60)
        assert "did not stop streaming" in stream.errors[-1]["message"]
        assert device.streaming
    finally:
        simulator.faults.ignore = set()
    wait_idle(sim_server)
    assert not device.streaming
    log = sim_server.app.state.settings.log_file.read_text()
    assert "the device stopped streaming when asked again" in log
    # The device is free for the next measurement.
    assert client.get("/state").json()["measuring"] is False


def read_with_arrival_times(url: str, messages: list[tuple[float, Any]]) -> threading.Thread:
    socket = connect(url, max_size=None)

    def read() -> None:
        with socket:
            for text in socket:
                messages.append((time.monotonic(), json.loads(text)))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_last_samples_are_not_held_back_by_the_stop_check(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    # A device that ignores stop makes the stop check take its three attempts
    # (at least 0.75 s): long enough to see what waits for it.
    simulator.faults.ignore = {STOP_REQUEST}
    messages: list[tuple[float, Any]] = []
    reader = read_with_arrival_times(f"{sim_server.ws_url}/api/v1/measurement/stream", messages)
    try:
        name = start(client, instructions(mac, time=1))["data"]["name"]
        assert simulator.wait_until(
            lambda: any(isinstance(payload, dict) for _, payload in messages), timeout=60
        )
    finally:
        simulator.faults.ignore = set()
    wait_idle(sim_server)
    reader.join(30)
    rows, attributes, _ = read_table(measurement_file(sim_server, name))
    samples = [
        (arrived, entry)
        for arrived, payload in messages
        if isinstance(payload, list)
        for entry in payload
        if entry["dataloss"] is None and entry["ift"] is None
    ]
    assert len(samples) == len(rows)
    final_loss = [
        arrived
        for arrived, payload in messages
        if isinstance(payload, list) and payload[0]["dataloss"] is not None
    ][-1]
    last_sample = samples[-1][0]
    # Only the final loss entry waited for the stop check; the samples did not.
    assert final_loss - last_sample >= 0.5
    assert str(attributes["measurement_status"]).startswith("error: the device did not stop")
