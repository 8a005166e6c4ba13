"""Which measurement channels are active and how their samples sit in a frame."""

from __future__ import annotations

from dataclasses import dataclass

from icotronic.can.sensor import SensorConfiguration
from icotronic.can.streaming import StreamingConfiguration

from icoapi.measurement.conversion import CHANNELS as CHANNEL_NAMES
from icoapi.measurement.conversion import ChannelLayout as ActiveChannels

COLUMN_NAMES = {"first": "x", "second": "y", "third": "z"}


@dataclass(frozen=True)
class ChannelMapping:
    """Which hardware sensor each measurement channel records (0: disabled).

    A streaming frame carries 3 values when one or three channels are active
    (one channel: three consecutive samples of it) and 2 values when two are."""

    channels: tuple[str, ...]
    sensor_numbers: tuple[int, int, int]

    @classmethod
    def from_numbers(cls, first: int, second: int, third: int) -> ChannelMapping:
        numbers = (first, second, third)
        active = tuple(name for name, number in zip(CHANNEL_NAMES, numbers, strict=True) if number)
        if not active:
            raise ValueError("at least one channel must be enabled (channel_number > 0)")
        return cls(channels=active, sensor_numbers=numbers)

    @property
    def active(self) -> ActiveChannels:
        """The active channels as the converter and the file writer see them."""
        return ActiveChannels(self.channels)

    @property
    def values_per_frame(self) -> int:
        return self.active.values_per_frame

    @property
    def samples_per_frame(self) -> int:
        """Samples of each active channel in one frame."""
        return self.active.rows_per_frame

    def frame_rate(self, sample_rate: float) -> float:
        """Frames per second for an ADC sample rate (all channels together)."""
        return sample_rate / self.values_per_frame

    def channel_rate(self, sample_rate: float) -> float:
        """Samples per second of each active channel."""
        return self.frame_rate(sample_rate) * self.samples_per_frame

    def streaming_configuration(self) -> StreamingConfiguration:
        first, second, third = (number != 0 for number in self.sensor_numbers)
        return StreamingConfiguration(first=first, second=second, third=third)

    def sensor_configuration(self) -> SensorConfiguration:
        return SensorConfiguration(*self.sensor_numbers)

    @property
    def needs_channel_mapping(self) -> bool:
        """True when some channel k records a sensor other than k (the device must
        be reconfigured, which not every device supports)."""
        return any(
            number not in (0, index) for index, number in enumerate(self.sensor_numbers, start=1)
        )

    def column(self, channel: str) -> str:
        return COLUMN_NAMES[channel]
