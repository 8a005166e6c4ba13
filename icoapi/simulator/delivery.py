"""When stream frames reach the host: Bluetooth bursts and the CAN bus's own pace.

A sensor device samples evenly, but its frames travel in two hops. Bluetooth
carries them in connection events, so they reach the STU in bursts (every
:attr:`~icoapi.simulator.faults.Faults.burst_interval` seconds, give or take
:attr:`~icoapi.simulator.faults.Faults.burst_jitter`). The STU then sends them on
the CAN bus one after the other, each taking the bus for :func:`frame_bits` bit
times at :attr:`~icoapi.simulator.faults.Faults.bus_bitrate`. What the bus cannot
carry waits in the STU's transmit queue (:attr:`~icoapi.simulator.faults.Faults.stu_queue_frames`);
a frame that finds it full is lost, and its counter is skipped, as on hardware.

A frame's timestamp is the end of its transmission on the bus, the moment a
CAN adapter stamps it: never earlier than the sample time (frames are late,
never early), and a burst arrives as frames one bus frame time apart.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .faults import Faults

STUFFED_OVERHEAD_BITS = 54
"""Bits of an extended data frame that bit stuffing applies to, without data:
start, identifier (11 + 18), SRR, IDE, RTR, two reserved bits, DLC and CRC."""
UNSTUFFED_OVERHEAD_BITS = 13
"""CRC delimiter, acknowledgement slot and delimiter, end of frame and the
interframe space."""


def frame_bits(dlc: int) -> int:
    """Bit times an extended data frame with ``dlc`` bytes takes on the bus, with
    the most stuff bits it can have (one after every four equal bits): 160 for
    8 bytes, so a 1 Mbit/s bus carries at most 6250 such frames per second."""
    stuffed = STUFFED_OVERHEAD_BITS + 8 * dlc
    return stuffed + (stuffed - 1) // 4 + UNSTUFFED_OVERHEAD_BITS


class Delivery:
    """The timing of one stream's frames on their way to the host.

    Args:
        faults: Read for the burst, bus and queue settings at every batch.
        dlc: Data length of the stream's frames.
        rng: Random numbers for the burst jitter.
    """

    def __init__(self, faults: Faults, dlc: int, rng: np.random.Generator) -> None:
        self._faults = faults
        self._bits = frame_bits(dlc)
        self._rng = rng
        self._bus_free = 0.0
        """Wall time at which the bus has sent the last frame handed to it."""
        self.frames_overflowed = 0
        """Frames lost because the STU's transmit queue was full."""

    def next_burst(self) -> float | None:
        """Seconds until the next Bluetooth connection event; ``None`` without bursts."""
        interval = self._faults.burst_interval
        if interval <= 0:
            return None
        jitter = self._faults.burst_jitter
        if jitter <= 0:
            return interval
        return max(0.0, interval + float(self._rng.uniform(-jitter, jitter)))

    def paced(
        self, first_arrival: float, spacing: float, keep: npt.NDArray[np.bool_]
    ) -> list[float]:
        """:meth:`timestamps` for frames arriving ``spacing`` seconds apart from
        ``first_arrival`` on (no bursts): the usual case, kept cheap."""
        bitrate = self._faults.bus_bitrate
        frame_time = self._bits / bitrate if bitrate else 0.0
        count = len(keep)
        offsets = np.arange(count, dtype=np.float64)
        offsets *= spacing
        offsets += first_arrival
        if spacing < frame_time or first_arrival < self._bus_free:
            return self.timestamps(offsets, keep)  # the bus is the bottleneck
        # Every frame finds the bus free: it ends one frame time after arriving.
        offsets += frame_time
        ends = offsets if keep.all() else offsets[keep]
        if len(ends):
            self._bus_free = float(ends[-1])
        stamps: list[float] = ends.tolist()
        return stamps

    def timestamps(
        self, arrivals: npt.NDArray[np.float64], keep: npt.NDArray[np.bool_]
    ) -> list[float]:
        """Timestamps of the frames that reach the host, given when each frame
        reaches the STU (``arrivals``, wall time). Frames the STU's queue cannot
        take are cleared in ``keep`` (frames already cleared stay lost)."""
        bitrate = self._faults.bus_bitrate
        frame_time = self._bits / bitrate if bitrate else 0.0
        queue_limit = self._faults.stu_queue_frames * frame_time
        kept = arrivals[keep]
        if not len(kept):
            return []
        # Each frame starts when it arrives or when the bus is free, whichever
        # is later: d[i] = max(a[i], d[i-1]) + c. With e[i] = d[i] - c (i+1)
        # that is a running maximum, e[i] = max(a[i] - c i, e[i-1]).
        steps = frame_time * np.arange(len(kept))
        ends = np.maximum.accumulate(np.concatenate(([self._bus_free], kept - steps)))[1:]
        ends += steps + frame_time
        if not frame_time or float(np.max(ends - frame_time - kept)) <= queue_limit:
            self._bus_free = float(ends[-1])
            stamps: list[float] = ends.tolist()
            return stamps
        return self._queued(arrivals, keep, frame_time, queue_limit)

    def _queued(
        self,
        arrivals: npt.NDArray[np.float64],
        keep: npt.NDArray[np.bool_],
        frame_time: float,
        queue_limit: float,
    ) -> list[float]:
        """:meth:`timestamps` while the STU's queue overflows, frame by frame."""
        bus_free = self._bus_free
        stamps: list[float] = []
        overflowed = 0
        for index, arrival in enumerate(arrivals.tolist()):
            if not keep[index]:
                continue
            start = bus_free if bus_free > arrival else arrival
            if start - arrival > queue_limit:
                keep[index] = False  # the transmit queue is full
                overflowed += 1
                continue
            bus_free = start + frame_time
            stamps.append(bus_free)
        self._bus_free = bus_free
        self.frames_overflowed += overflowed
        return stamps
