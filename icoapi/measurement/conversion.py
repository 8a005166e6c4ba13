"""Raw ADC counts to physical values, vectorized over whole batches of frames.

A sensor definition maps a voltage range linearly onto a physical range::

    k = (phys_max - phys_min) / (volt_max - volt_min)
    d = phys_max - k * volt_max
    phys = volts * k + d,          volts = raw * V_ref / 65535

so for one channel ``phys = raw * a + b`` with ``a = V_ref / 65535 * k`` and ``b = d``.

Frame layout (what a streaming frame of the sensor device holds):

* one active channel: 3 consecutive samples of that channel;
* two active channels: 2 values, in channel order (first, second, third) with the
  disabled channel left out;
* three active channels: 3 values, one per channel.

Every active channel is converted with its own sensor, whichever channels are
active (upstream skipped the conversion when the first channel was disabled).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from icoapi.sensors.schemas import sensor_coefficients as sensor_coefficients

CHANNELS = ("first", "second", "third")
ADC_FULL_SCALE = 65535


class SensorRange(Protocol):
    """Anything with the four range values of a sensor definition."""

    @property
    def phys_min(self) -> float: ...
    @property
    def phys_max(self) -> float: ...
    @property
    def volt_min(self) -> float: ...
    @property
    def volt_max(self) -> float: ...


@dataclass(frozen=True)
class ChannelLayout:
    """Which measurement channels are active, in channel order."""

    channels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.channels:
            raise ValueError("at least one channel must be active")
        if list(self.channels) != [c for c in CHANNELS if c in self.channels]:
            raise ValueError(
                f"channels must be distinct names out of {CHANNELS} in that order, "
                f"got {self.channels}"
            )

    @classmethod
    def of(cls, channels: Iterable[str]) -> ChannelLayout:
        return cls(tuple(channels))

    @property
    def single(self) -> bool:
        return len(self.channels) == 1

    @property
    def values_per_frame(self) -> int:
        """3 for one or three active channels, 2 for two."""
        return 2 if len(self.channels) == 2 else 3

    @property
    def rows_per_frame(self) -> int:
        """HDF5 rows per frame: each sample of a single channel gets its own row."""
        return 3 if self.single else 1


class SampleConverter:
    """Converts raw uint16 frames of the active channels to float32 physical values.

    Args:
        reference_voltage: ADC reference voltage in volts.
        coefficients: one ``(k, d)`` pair per active channel, in channel order
            (see :func:`sensor_coefficients`).
    """

    def __init__(
        self, reference_voltage: float, coefficients: Sequence[tuple[float, float]]
    ) -> None:
        if not coefficients:
            raise ValueError("one (k, d) pair per active channel is required")
        if reference_voltage <= 0:
            raise ValueError("the reference voltage must be positive")
        self.reference_voltage = float(reference_voltage)
        k = np.array([float(pair[0]) for pair in coefficients], dtype=np.float64)
        d = np.array([float(pair[1]) for pair in coefficients], dtype=np.float64)
        self.a: npt.NDArray[np.float64] = k * (self.reference_voltage / ADC_FULL_SCALE)
        self.b: npt.NDArray[np.float64] = d

    @classmethod
    def for_channels(
        cls, reference_voltage: float, coefficients: list[tuple[float, float]]
    ) -> SampleConverter:
        """Converter from per-active-channel sensor ``(k, d)`` pairs."""
        return cls(reference_voltage, coefficients)

    @classmethod
    def for_sensors(
        cls, reference_voltage: float, sensors: Sequence[SensorRange]
    ) -> SampleConverter:
        """Converter from one sensor definition per active channel."""
        return cls(
            reference_voltage,
            [sensor_coefficients(s.phys_min, s.phys_max, s.volt_min, s.volt_max) for s in sensors],
        )

    def convert(self, raw: npt.ArrayLike, layout: ChannelLayout) -> npt.NDArray[np.float32]:
        """Convert ``raw`` of shape ``(n_frames, layout.values_per_frame)``.

        :returns: float32 array of the same shape.
        :raises ValueError: on a shape or channel-count mismatch."""
        values = np.asarray(raw)
        if len(layout.channels) != len(self.a):
            raise ValueError(
                f"converter has {len(self.a)} channel(s), layout has {len(layout.channels)}"
            )
        if values.ndim != 2 or values.shape[1] != layout.values_per_frame:
            raise ValueError(
                f"expected raw values of shape (n, {layout.values_per_frame}), got {values.shape}"
            )
        if layout.single:
            a = np.repeat(self.a, layout.values_per_frame)
            b = np.repeat(self.b, layout.values_per_frame)
        else:
            a, b = self.a, self.b
        return (values.astype(np.float64) * a + b).astype(np.float32)
