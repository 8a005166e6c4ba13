"""The timing of stream frames on their way to the host (bursts, bus, STU queue)."""

from __future__ import annotations

import numpy as np
from icotronic.can import StreamingConfiguration
from icotronic.can.node.sth import STH

from icoapi.simulator import Faults, Simulator
from icoapi.simulator.delivery import Delivery, frame_bits

from .helpers import record_stream


def test_frame_bits_count_the_most_stuff_bits() -> None:
    assert frame_bits(8) == 160  # 6250 frames/s at 1 Mbit/s
    assert frame_bits(6) == 140


def test_fast_path_equals_frame_by_frame() -> None:
    faults = Faults()
    rng = np.random.default_rng(1)
    arrivals = np.sort(rng.uniform(0, 0.05, 300))
    keep = rng.random(300) > 0.1
    fast, slow = Delivery(faults, 8, rng), Delivery(faults, 8, rng)
    stamps = fast.timestamps(arrivals, keep.copy())
    expected = slow._queued(arrivals, keep.copy(), 160e-6, 256 * 160e-6)
    assert np.allclose(stamps, expected, rtol=0, atol=1e-12)
    # Late, never early; never closer than a frame's time on the bus.
    assert np.all(np.array(stamps) >= arrivals[keep] + 160e-6 - 1e-12)
    assert np.all(np.diff(stamps) >= 160e-6 - 1e-12)


def test_full_queue_loses_frames() -> None:
    faults = Faults()
    faults.stu_queue_frames = 4
    delivery = Delivery(faults, 8, np.random.default_rng(1))
    keep = np.ones(10, dtype=bool)
    stamps = delivery.timestamps(np.zeros(10), keep)
    # One frame on the bus, four waiting: the queue holds frames that start
    # within four frame times.
    assert len(stamps) == 5
    assert delivery.frames_overflowed == 5
    assert keep.tolist() == [True] * 5 + [False] * 5


async def test_bursts_reach_the_library_late_and_lossless(sth: STH, simulator: Simulator) -> None:
    simulator.faults.burst_interval = 0.015
    simulator.faults.burst_jitter = 0.005
    recording = await record_stream(sth, StreamingConfiguration(), seconds=1.0)
    assert recording.dataloss == 0
    gaps = np.diff(recording.timestamps)
    # Frames of one burst follow each other at the bus's pace; bursts are apart.
    assert np.median(gaps) < 0.6 / 3174.6
    assert gaps.max() > 5 / 3174.6
    assert abs(recording.frame_rate() / 3174.6 - 1) < 0.03
