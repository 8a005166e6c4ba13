"""Measurements of 1, 2 and 3 channels: sample counts, physical values, files."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from icotronic.measurement.storage import Storage

from icoapi.simulator import Simulator
from tests.measurement.helpers import (
    DISABLED,
    StreamRecorder,
    connect_device,
    instructions,
    measurement_file,
    read_table,
    start,
    wait_idle,
)
from tests.support import LiveServer

SAMPLE_RATE = 38_400_000 / (3 * 21 * 64)  # default ADC settings: 9523.8 Hz


def quiet(simulator: Simulator) -> None:
    """Noise-free signals, so file values can be compared sample by sample."""
    for device in simulator.devices:
        for signal in device.signals.values():
            signal.noise = 0.0


CASES = {
    "one": ({"first": {"channel_number": 1, "sensor_id": "acc100g_01"}}, ["first"], [1]),
    "two": (
        {
            "first": {"channel_number": 1, "sensor_id": "acc100g_01"},
            "second": {"channel_number": 2, "sensor_id": "acc40g_y"},
        },
        ["first", "second"],
        [1, 2],
    ),
    "three": (
        {
            "first": {"channel_number": 1, "sensor_id": "acc100g_01"},
            "second": {"channel_number": 2, "sensor_id": "acc40g_y"},
            "third": {"channel_number": 3, "sensor_id": "acc40g_z"},
        },
        ["first", "second", "third"],
        [1, 2, 3],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_channels(
    case: str, sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    channels_body, channels, sensors = CASES[case]
    quiet(simulator)
    mac = simulator.config.devices[0].mac
    http = client
    connect_device(http, mac)
    duration = 3
    stream = StreamRecorder(f"{sim_server.ws_url}/api/v1/measurement/stream").start()
    result = start(http, instructions(mac, time=duration, **channels_body))
    name = result["data"]["name"]
    assert result["message"] == "Measurement started successfully."
    assert result["data"]["running"] is True
    wait_idle(sim_server)
    stream.wait()

    rows, attributes, sensor_rows = read_table(measurement_file(sim_server, name))
    values_per_frame = 2 if len(channels) == 2 else 3
    frame_rate = SAMPLE_RATE / values_per_frame
    channel_rate = frame_rate * (3 if len(channels) == 1 else 1)
    # Sample count per channel = per-channel rate × duration, within 2 %.
    assert abs(len(rows) - channel_rate * duration) <= 0.02 * channel_rate * duration
    assert attributes["dataloss"] == 0
    assert attributes["measurement_status"] == "completed"
    assert float(attributes["channel_sample_rate"]) == pytest.approx(channel_rate)
    assert attributes["conversion"] == "true"
    assert [row["channel"].decode() for row in sensor_rows] == channels

    # Values in physical units follow the simulator's signals: sample n of a
    # channel was taken n / channel_rate seconds after the stream started.
    device = simulator.devices[0]
    times = np.arange(len(rows)) / channel_rate
    for channel, sensor_number in zip(channels, sensors, strict=True):
        column = {"first": "x", "second": "y", "third": "z"}[channel]
        expected = device.signals[sensor_number].physical(times)
        resolution = (
            (
                sensor_rows[channels.index(channel)]["phys_max"]
                - sensor_rows[channels.index(channel)]["phys_min"]
            )
            / (
                sensor_rows[channels.index(channel)]["volt_max"]
                - sensor_rows[channels.index(channel)]["volt_min"]
            )
            * 3.3
            / 65535
        )
        assert np.max(np.abs(rows[column] - expected)) < 2 * resolution + 1e-4
    # Timestamps (µs) advance with the channel rate.
    spacing = np.diff(rows["timestamp"].astype(np.int64))
    assert abs(np.median(spacing) - 1e6 / channel_rate) <= 2

    # The live stream held every sample with its own timestamp.
    assert stream.closed_normally
    assert len(stream.samples) == len(rows)
    for channel in ("first", "second", "third"):
        present = [sample[channel] is not None for sample in stream.samples]
        assert all(present) if channel in channels else not any(present)
    assert stream.dataloss[-1] == 0
    # WEBSOCKET_UPDATE_RATE (default 60) caps the messages per second.
    assert stream.messages <= 60 * (duration + 1) + 5


def test_file_readable_by_icotronic(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    name = start(client, instructions(mac, time=1))["data"]["name"]
    wait_idle(sim_server)
    with Storage(measurement_file(sim_server, name)) as storage:
        assert storage.dataloss() == 0
        assert storage.sampling_frequency() == pytest.approx(SAMPLE_RATE, rel=0.03)


def test_first_channel_disabled_is_converted(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    quiet(simulator)
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    body = instructions(
        mac,
        time=1,
        first=DISABLED,
        second={"channel_number": 5, "sensor_id": "temp_01"},
        third={"channel_number": 10, "sensor_id": "vbat_01"},
    )
    stream = StreamRecorder(f"{sim_server.ws_url}/api/v1/measurement/stream").start()
    name = start(client, body)["data"]["name"]
    wait_idle(sim_server)
    stream.wait()
    rows, _, sensors = read_table(measurement_file(sim_server, name))
    assert set(rows.dtype.names) == {"counter", "timestamp", "y", "z"}
    # Temperature around 25 °C and battery around 3.9 V: converted, not raw counts.
    assert 20 < float(np.mean(rows["y"])) < 30
    assert 3.5 < float(np.mean(rows["z"])) < 4.2
    assert [row["channel"].decode() for row in sensors] == ["second", "third"]
    assert stream.samples
    assert all(s["first"] is None for s in stream.samples)
    assert all(20 < s["second"] < 30 and 3.5 < s["third"] < 4.2 for s in stream.samples)
