"""Which measurement channels are active and how their samples sit in a frame.

:class:`ChannelLayout` is the one channel-layout concept of the service: the
converter, the live stream, the runner's hand-over to the HDF5 writer and the
device setup all use it (the writer itself takes channel names: ``hdf5`` does
not import ``measurement``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from icotronic.can.sensor import SensorConfiguration
from icotronic.can.streaming import StreamingConfiguration

from icoapi.hdf5.layout import CHANNELS, FrameShape


@dataclass(frozen=True)
class ChannelLayout:
    """The active measurement channels (in channel order) and which hardware
    sensor each of the three records (0: disabled).

    A streaming frame carries 3 values when one or three channels are active
    (one channel: three consecutive samples of it) and 2 values when two are."""

    channels: tuple[str, ...]
    sensor_numbers: tuple[int, int, int] = field(default=(0, 0, 0))

    def __post_init__(self) -> None:
        if not self.channels:
            raise ValueError("at least one channel must be enabled (channel_number > 0)")
        if list(self.channels) != [c for c in CHANNELS if c in self.channels]:
            raise ValueError(
                f"channels must be distinct names out of {CHANNELS} in that order, "
                f"got {self.channels}"
            )
        if self.sensor_numbers == (0, 0, 0):
            # Channel k records sensor k unless told otherwise.
            numbers = tuple(
                index if name in self.channels else 0
                for index, name in enumerate(CHANNELS, start=1)
            )
            object.__setattr__(self, "sensor_numbers", numbers)

    @classmethod
    def of(cls, channels: Iterable[str]) -> ChannelLayout:
        return cls(tuple(channels))

    @classmethod
    def from_numbers(cls, first: int, second: int, third: int) -> ChannelLayout:
        numbers = (first, second, third)
        active = tuple(name for name, number in zip(CHANNELS, numbers, strict=True) if number)
        if not active:
            raise ValueError("at least one channel must be enabled (channel_number > 0)")
        return cls(channels=active, sensor_numbers=numbers)

    @property
    def single(self) -> bool:
        return len(self.channels) == 1

    @property
    def frame_shape(self) -> FrameShape:
        return FrameShape.of(self.channels)

    @property
    def values_per_frame(self) -> int:
        """3 for one or three active channels, 2 for two."""
        return self.frame_shape.values_per_frame

    @property
    def samples_per_frame(self) -> int:
        """Samples of each active channel in one frame (= file rows per frame)."""
        return self.frame_shape.rows_per_frame

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
