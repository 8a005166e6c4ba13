"""Streaming through the real icotronic library: values, frame rate, loss."""

from __future__ import annotations

import numpy as np
import pytest
from icotronic.can import SensorConfiguration, StreamingConfiguration
from icotronic.can.node.sth import STH

from icoapi.simulator import SensorDevice, Simulator, expected_physical, sample_time

from .helpers import Recording, physical_lsb, record_stream, to_physical

CHANNELS = {
    "1-channel": (True, False, False),
    "2-channels": (True, True, False),
    "3-channels": (True, True, True),
}


def check_values(
    recording: Recording,
    device: SensorDevice,
    channels: tuple[bool, bool, bool],
    reference_voltage: float,
    frame_rate: float,
) -> None:
    """Compare every received value with the noiseless physical signal."""
    enabled = [number for number, on in enumerate(channels, start=1) if on]
    samples_per_frame = 3 if len(enabled) == 1 else 1
    values = np.array(recording.values)
    assert values.shape == (recording.frames, 3 if len(enabled) != 2 else 2)
    for frame, row in zip(recording.frame_indices().tolist(), values, strict=True):
        for column, raw in enumerate(row):
            channel = enabled[0] if samples_per_frame == 3 else enabled[column]
            sample = column if samples_per_frame == 3 else 0
            signal = device.signals[device.sensor_configuration[channel - 1]]
            t = sample_time(frame, sample, frame_rate, samples_per_frame)
            measured = to_physical(np.array([raw]), signal, reference_voltage)[0]
            expected = expected_physical(signal, t)
            assert abs(measured - expected) <= physical_lsb(signal, reference_voltage), (
                f"frame {frame} value {column}: {measured} != {expected} {signal.unit}"
            )


def silence_noise(device: SensorDevice) -> None:
    for signal in device.signals.values():
        signal.noise = 0.0


@pytest.mark.parametrize("channels", CHANNELS.values(), ids=CHANNELS.keys())
async def test_stream_values_rate_and_no_loss(
    sth: STH, simulator: Simulator, channels: tuple[bool, bool, bool]
) -> None:
    device = simulator.devices[0]
    silence_noise(device)
    adc = await sth.get_adc_configuration()
    expected_rate = adc.sample_rate() / (2 if sum(channels) == 2 else 3)

    recording = await record_stream(sth, StreamingConfiguration(*channels), seconds=3.0)

    assert recording.counters[0] == 0
    assert sum(recording.lost) == 0
    assert recording.dataloss == 0
    assert recording.duration() >= 3.0
    assert recording.frame_rate() == pytest.approx(expected_rate, rel=0.02)
    assert recording.frames >= 3 * expected_rate
    check_values(recording, device, channels, adc.reference_voltage, expected_rate)


async def test_stream_follows_adc_and_sensor_configuration(sth: STH, simulator: Simulator) -> None:
    device = simulator.devices[0]
    silence_noise(device)
    await sth.set_adc_configuration(reference_voltage=5.0, oversampling_rate=128)
    # Temperature, battery voltage and the 100 g accelerometer.
    await sth.set_sensor_configuration(SensorConfiguration(5, 10, 1))
    adc = await sth.get_adc_configuration()
    expected_rate = adc.sample_rate() / 3
    assert expected_rate == pytest.approx(9523.8 / 2 / 3, rel=1e-3)

    channels = (True, True, True)
    recording = await record_stream(sth, StreamingConfiguration(*channels), seconds=0.5)

    assert recording.dataloss == 0
    assert recording.frame_rate() == pytest.approx(expected_rate, rel=0.02)
    check_values(recording, device, channels, 5.0, expected_rate)
    temperature = to_physical(np.array(recording.values)[:, 0], device.signals[5], 5.0)
    assert np.all(np.abs(temperature - 25.0) <= 0.6)


async def test_rate_multiplier_speeds_up_stream(sth: STH, simulator: Simulator) -> None:
    simulator.rate_multiplier = 4.0
    # Four times the rate is more than a 1 Mbit/s bus carries (see test_bus_ceiling).
    simulator.faults.bus_bitrate = None
    adc = await sth.get_adc_configuration()
    recording = await record_stream(sth, StreamingConfiguration(), seconds=1.0)
    assert recording.dataloss == 0
    assert recording.frame_rate() == pytest.approx(4 * adc.sample_rate() / 3, rel=0.02)
