"""The frame-batch model: what one batch of received frames means, computed once.

:class:`FrameAssembler` turns raw frames (counters, epoch timestamps, ADC counts)
into :class:`FrameBatch` objects: timestamps relative to the first frame, the time
of every sample and converted values, as they arrive (for the live stream). For
the file, the batches of a hand-over are merged into one, which also gets the
number of frames lost before and within it (counting loss once per hand-over
rather than per read keeps the cost per frame low). The file and the live
stream consume the same batches, so they cannot disagree. The assembler finds
the lost frames; the file writer keeps the one tally of them.

Loss is counted from counters *and* timestamps. The 8-bit counter alone cannot
tell a gap of ``d`` frames from one of ``d + 256 k``; the frame timestamps can.
Each frame has an offset ``t * rate - n`` (its time in frame periods minus its
index ``n`` as the counters tell it). Without loss the offsets stay constant,
up to the delivery delay of each frame (radio and bus deliver frames in
bursts, so timestamps are late, never early); ``k`` lost counter cycles raise
them by ``256 k``. So at every gap, ``k`` is the rounded difference between the
smallest offset of up to :data:`WINDOW` frames after it and of up to
:data:`WINDOW` frames before it (the least delayed frame of each side): lost
frames are ``d + 256 k - 1``. A burst delivered late does not look like a loss
as long as some frame within the window on each side arrived less than 128
frame periods late (40 ms at the default rate). This needs the stated frame
rate to be right (the runner cross-checks it). A repeated counter (a frame sent
twice) counts as neither received nor lost, as in icotronic, unless a whole
cycle's time passed.

A device starts counting at 0 with every start request. When its answer to the
start request is late, the library sends the request again, and the device
starts over: the frames begin again at counter 0. Within the first
:data:`START_PHASE_S` seconds such a new start (counter 0 that does not follow
255, after a time that does not match the counter step) is taken for what it is,
not for lost counter cycles: counting begins anew there, and the rate is checked
from there on (:attr:`FrameAssembler.restart`). Frames lost just before a counter
0 took their time with them and stay a loss.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from icoapi.measurement.conversion import SampleConverter
from icoapi.measurement.layout import ChannelLayout
from icoapi.system.stream import RawFrames

# Frames on each side of a gap whose smallest offset is compared (0.3 s at the
# default rate: longer than a delivery stall is likely to last).
WINDOW = 1024
# Pairs whose time apart differs by this many frame periods from their counter
# step are checked for lost cycles.
SUSPICIOUS = 32
# Seconds after the first frame in which the stream may start over (a repeated
# start request): longer than the library's retries of a late answer take.
START_PHASE_S = 2.0


@dataclass(frozen=True)
class FrameBatch:
    """Received frames, ready for the file and the live stream.

    ``counters`` (n,), ``frame_times`` (n,) seconds since the first frame,
    ``sample_times`` (n, samples_per_frame) seconds of every sample,
    ``values`` (n, values_per_frame) physical values, ``lost`` frames lost
    before and between these frames (known once batches are merged; 0 before)."""

    counters: npt.NDArray[np.uint8]
    frame_times: npt.NDArray[np.float64]
    sample_times: npt.NDArray[np.float64]
    values: npt.NDArray[np.float32]
    lost: int = 0

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


class LossDetector:
    """Counts lost frames from counters and timestamps, batch after batch."""

    def __init__(self, frame_rate: float) -> None:
        self.frame_rate = frame_rate
        self._last_counter: int | None = None
        self._first_time = 0.0  # seconds
        self._last_time = 0.0  # frame periods since the first frame
        self._last_index = 0.0  # unwrapped frame index, lost cycles included
        # Offsets of the recent frames (at least WINDOW of them), newest last.
        self._history: deque[npt.NDArray[np.float64]] = deque()
        self._history_frames = 0
        self._start_phase = True
        self._frames = 0  # frames given to count() so far
        # (its time as given to count(), frames before it) of the last new start.
        self.restart: tuple[float, int] | None = None

    def count(
        self, counters: npt.NDArray[np.integer[Any]], times: npt.NDArray[np.float64]
    ) -> tuple[int, int]:
        """``(lost, received)`` for the next frames (``times`` in seconds)."""
        if self._last_counter is None:
            if not len(counters):
                return 0, 0
            self._last_counter = int(counters[0])
            self._first_time = float(times[0])
            self._frames += 1
            self._remember(np.zeros(1))
            lost, received = self.count(counters[1:], times[1:])
            return lost, received + 1
        if not len(counters):
            return 0, 0
        if self._start_phase:
            start = self._new_start(counters, times)
            if start is not None:
                lost, received = self.count(counters[:start], times[:start])
                self.restart = (float(times[start]), self._frames)
                # Counting begins anew at the new start: time and index from there.
                self._last_counter = None
                self._last_time = 0.0
                self._last_index = 0.0
                self._history.clear()
                self._history_frames = 0
                more_lost, more_received = self.count(counters[start:], times[start:])
                return lost + more_lost, received + more_received
        self._frames += len(counters)
        periods = (times - self._first_time) * self.frame_rate
        steps = np.mod(np.diff(counters.astype(np.int64), prepend=self._last_counter), 256)
        index = np.cumsum(steps) + self._last_index
        offsets = periods - index
        elapsed = np.diff(periods, prepend=self._last_time)
        suspicious = np.flatnonzero(np.abs(elapsed - steps) >= SUSPICIOUS)
        self._last_counter = int(counters[-1])
        self._last_time = float(periods[-1])
        self._last_index = float(index[-1])
        if not len(suspicious):  # the usual case: the counters tell everything
            self._remember(offsets)
            received = int(np.count_nonzero(steps))
            return int(steps.sum()) - received, received
        cycles = np.zeros(len(steps), np.int64)
        history = np.concatenate(self._history)
        for gap in suspicious:
            before = np.concatenate((history, offsets[:gap]))[-WINDOW:].min()
            after = offsets[gap : gap + WINDOW].min()
            lost_cycles = max(0, round((after - before) / 256))
            if lost_cycles:
                cycles[gap] = lost_cycles
                offsets[gap:] -= 256 * lost_cycles
        self._remember(offsets)
        self._last_index += 256 * float(cycles.sum())
        # Same counter: the frame sent twice, unless a whole counter cycle passed.
        repeated = (steps == 0) & (cycles == 0)
        spans = steps[~repeated] + 256 * cycles[~repeated]
        return int(spans.sum()) - len(spans), len(spans)

    def _new_start(
        self, counters: npt.NDArray[np.integer[Any]], times: npt.NDArray[np.float64]
    ) -> int | None:
        """Index of the first frame where the stream starts over, if any (and
        whether the start phase is over)."""
        early = times - self._first_time < START_PHASE_S
        if not early[-1]:
            self._start_phase = False
        last = self._last_counter if self._last_counter is not None else -1
        previous = np.concatenate((np.array([last], np.int64), counters[:-1].astype(np.int64)))
        # A new start leaves time and counter step unrelated (the device paused for
        # the repeated request); frames lost just before a counter 0 do not: their
        # time passed with them, so that is counted as loss.
        periods = (times - self._first_time) * self.frame_rate
        elapsed = np.diff(periods, prepend=self._last_time)
        steps = np.mod(counters.astype(np.int64) - previous, 256)
        unrelated = np.abs(elapsed - steps) >= SUSPICIOUS
        starts = np.flatnonzero((counters == 0) & (previous != 255) & early & unrelated)
        return int(starts[0]) if len(starts) else None

    def _remember(self, offsets: npt.NDArray[np.float64]) -> None:
        self._history.append(offsets)
        self._history_frames += len(offsets)
        while self._history_frames - len(self._history[0]) >= WINDOW:
            self._history_frames -= len(self._history.popleft())


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
        self._loss = LossDetector(self.frame_rate)
        self.last_time = 0.0  # seconds from the first frame to the newest one

    @property
    def restart(self) -> tuple[float, int] | None:
        """Where the stream last started over (see the module docstring):
        seconds from the first frame and the number of frames before it."""
        return self._loss.restart  # the detector counts frame times from the first frame

    @property
    def start_time(self) -> str | None:
        """Local ISO time of the first frame."""
        if self.first_epoch is None:
            return None
        return datetime.fromtimestamp(self.first_epoch).isoformat()

    def assemble(self, frames: RawFrames) -> FrameBatch:
        """The batch of frames just read (its loss is counted by :meth:`merge`)."""
        stamps = frames.timestamps
        if self.first_epoch is None:
            self.first_epoch = float(stamps[0])
        relative = stamps - self.first_epoch
        self.last_time = float(relative[-1])
        values = self.converter.convert(frames.raw, self.layout)
        sample_times = relative[:, None] + self._offsets[None, :]
        return FrameBatch(frames.counters, relative, sample_times, values)

    def merge(self, parts: list[FrameBatch]) -> FrameBatch:
        """One batch of consecutive batches, with the frames lost before and
        within it. Every batch must be merged exactly once, in order."""
        counters = np.concatenate([part.counters for part in parts])
        frame_times = np.concatenate([part.frame_times for part in parts])
        lost, _ = self._loss.count(counters, frame_times)
        return FrameBatch(
            counters,
            frame_times,
            np.concatenate([part.sample_times for part in parts]),
            np.concatenate([part.values for part in parts]),
            lost,
        )
