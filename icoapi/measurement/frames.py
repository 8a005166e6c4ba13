"""The frame-batch model: what one batch of received frames means, computed once.

:class:`FrameAssembler` turns raw frames (counters, epoch timestamps, ADC counts)
into :class:`FrameBatch` objects: timestamps relative to the first frame, the time
of every sample, converted values and the number of frames lost before and
within the batch. The file writer and the live stream both consume these
batches, so the file and the stream cannot disagree.

Loss is counted from counters *and* timestamps. The 8-bit counter alone cannot
tell a gap of ``d`` frames from one of ``d + 256 k``; the time between the two
frames around a gap can. Per gap, the counter step ``d = (c1 - c0) mod 256`` is
extended by the whole number of counter cycles ``k`` that makes ``d + 256 k``
closest to the elapsed frame periods; lost frames are ``d + 256 k - 1``. A
repeated counter (a frame sent twice) counts as neither received nor lost, as in
icotronic (unless at least 128 frame periods passed: then a whole cycle was
lost). Timestamps only need to be right to within ±128 frame periods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from icoapi.measurement.conversion import SampleConverter
from icoapi.measurement.layout import ChannelLayout
from icoapi.system.stream import RawFrames


@dataclass(frozen=True)
class FrameBatch:
    """Received frames, ready for the file and the live stream.

    ``counters`` (n,), ``frame_times`` (n,) seconds since the first frame,
    ``sample_times`` (n, samples_per_frame) seconds of every sample,
    ``values`` (n, values_per_frame) physical values, ``lost`` frames lost
    before and between these frames."""

    counters: npt.NDArray[np.uint8]
    frame_times: npt.NDArray[np.float64]
    sample_times: npt.NDArray[np.float64]
    values: npt.NDArray[np.float32]
    lost: int

    def __len__(self) -> int:
        return len(self.counters)

    def head(self, frames: int) -> FrameBatch:
        """The first ``frames`` frames (the loss stays with them)."""
        return FrameBatch(
            self.counters[:frames],
            self.frame_times[:frames],
            self.sample_times[:frames],
            self.values[:frames],
            self.lost,
        )


def lost_frames(
    counters: npt.NDArray[np.int64], times: npt.NDArray[np.float64], frame_rate: float
) -> tuple[int, int]:
    """``(lost, received)`` over a sequence whose first frame was counted before
    (it is the previous batch's last frame, or the first frame of the run)."""
    steps = np.mod(np.diff(counters), 256)
    elapsed = np.diff(times) * frame_rate
    # Same counter: the frame sent twice, unless a whole counter cycle passed.
    repeated = (steps == 0) & (elapsed < 128)
    steps, elapsed = steps[~repeated], elapsed[~repeated]
    if not len(steps):
        return 0, 0
    cycles = np.maximum(np.rint((elapsed - steps) / 256), 0).astype(np.int64)
    cycles[steps == 0] = np.maximum(cycles[steps == 0], 1)
    spans = steps + 256 * cycles
    return int(spans.sum()) - len(spans), len(spans)


class FrameAssembler:
    """Builds the batches of one measurement (keeps the state across batches)."""

    def __init__(
        self, layout: ChannelLayout, converter: SampleConverter, sample_rate: float
    ) -> None:
        self.layout = layout
        self.converter = converter
        self.frame_rate = layout.frame_rate(sample_rate)
        channel_rate = layout.channel_rate(sample_rate)
        # The samples of a single-channel frame are 1 / channel rate apart; the
        # first is at the frame's timestamp.
        self._offsets = np.arange(layout.samples_per_frame) / channel_rate
        self.first_epoch: float | None = None
        self._last_counter = 0
        self._last_time = 0.0
        self.received = 0
        self.lost = 0
        self.last_time = 0.0

    @property
    def start_time(self) -> str | None:
        """Local ISO time of the first frame."""
        if self.first_epoch is None:
            return None
        return datetime.fromtimestamp(self.first_epoch).isoformat()

    @property
    def dataloss(self) -> float:
        total = self.lost + self.received
        return self.lost / total if total else 0.0

    @property
    def measured_frame_rate(self) -> float | None:
        """Frames per second the timestamps show (received and lost ones)."""
        if self.last_time <= 0 or self.received + self.lost < 2:
            return None
        return (self.received + self.lost - 1) / self.last_time

    def assemble(self, frames: RawFrames) -> FrameBatch:
        stamps = frames.timestamps
        if self.first_epoch is None:
            self.first_epoch = float(stamps[0])
            lost, received = lost_frames(frames.counters.astype(np.int64), stamps, self.frame_rate)
            received += 1
        else:
            counters = np.concatenate(([self._last_counter], frames.counters)).astype(np.int64)
            times = np.concatenate(([self._last_time + self.first_epoch], stamps))
            lost, received = lost_frames(counters, times, self.frame_rate)
        relative = stamps - self.first_epoch
        self._last_counter = int(frames.counters[-1])
        self._last_time = float(relative[-1])
        self.last_time = self._last_time
        self.lost += lost
        self.received += received
        values = self.converter.convert(frames.raw, self.layout)
        sample_times = relative[:, None] + self._offsets[None, :]
        return FrameBatch(frames.counters, relative, sample_times, values, lost)
