"""Shared test helpers: delays, stream recording, raw → physical conversion."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from icotronic.can import StreamingConfiguration
from icotronic.can.node.sensor import SensorNode

from icoapi.simulator import Signal

# Short delays keep the suite fast; the library polls every 0.1 s anyway.
SCAN_DELAY = 0.05
CONNECT_DELAY = 0.1


@dataclass
class Recording:
    """What the library delivered for one stream."""

    counters: list[int] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    dataloss: float = 0.0

    @property
    def frames(self) -> int:
        return len(self.counters)

    def frame_indices(self) -> np.ndarray:
        """Absolute frame numbers, reconstructed from the library's loss counts."""
        return np.cumsum(np.array(self.lost) + 1) - 1

    def duration(self) -> float:
        return self.timestamps[-1] - self.timestamps[0]

    def frame_rate(self) -> float:
        """Frames per second from frame numbers and timestamps."""
        indices = self.frame_indices()
        return float((indices[-1] - indices[0]) / self.duration())


async def record_stream(
    node: SensorNode,
    channels: StreamingConfiguration,
    *,
    seconds: float | None = None,
    frames: int | None = None,
    timeout: float = 5,
) -> Recording:
    """Stream until ``seconds`` of timestamps or ``frames`` frames were received.

    Only appends inside the loop, so the consumer keeps up with the stream.
    """
    recording = Recording()
    async with node.open_data_stream(channels, timeout=timeout) as stream:
        async for data, lost in stream:
            recording.counters.append(data.counter)
            recording.timestamps.append(data.timestamp)
            recording.values.append(data.values)
            recording.lost.append(lost)
            if frames is not None and len(recording.counters) >= frames:
                break
            if seconds is not None and data.timestamp - recording.timestamps[0] >= seconds:
                break
        recording.dataloss = stream.dataloss()
    return recording


def to_physical(raw: np.ndarray, signal: Signal, reference_voltage: float) -> np.ndarray:
    """Convert raw ADC values like a client does with its sensors.yaml entry."""
    volts = raw / 65535 * reference_voltage
    return signal.phys_min + (volts - signal.volt_min) * (signal.phys_max - signal.phys_min) / (
        signal.volt_max - signal.volt_min
    )


def physical_lsb(signal: Signal, reference_voltage: float) -> float:
    """One ADC count in physical units."""
    return (
        reference_voltage
        / 65535
        * (signal.phys_max - signal.phys_min)
        / (signal.volt_max - signal.volt_min)
    )
