"""The frame-batch model: loss from counters and timestamps, sample times."""

from __future__ import annotations

import numpy as np
import pytest
from icotronic.can.dataloss import calculate_dataloss_stats

from icoapi.measurement.conversion import SampleConverter
from icoapi.measurement.frames import FrameAssembler, LossDetector
from icoapi.measurement.layout import ChannelLayout
from icoapi.system.stream import RawFrames

RATE = 3174.6  # frames per second


def test_small_gaps_match_icotronic() -> None:
    counters = np.array([250, 251, 253, 254, 255, 0, 1, 1, 5, 200, 10, 11])
    # timestamps that agree with the counters (the duplicate shares its time)
    index = np.array([0, 1, 3, 4, 5, 6, 7, 7, 11, 206, 272, 273])
    lost, received = LossDetector(RATE).count(counters, index / RATE)
    expected = calculate_dataloss_stats(counters.tolist())
    assert lost == expected.lost == 1 + 3 + 194 + 65
    assert received == len(counters) - 1  # the duplicate is skipped


@pytest.mark.parametrize("gap", [255, 256, 257, 2000, 2048, 100_000])
def test_gaps_beyond_the_counter_are_counted_exactly(gap: int) -> None:
    index = np.concatenate([np.arange(100), np.arange(100 + gap, 200 + gap)])
    # receipt timestamps are late by up to 40 ms (radio and bus deliver in bursts)
    delay = np.random.default_rng(gap).uniform(0, 0.04, len(index))
    detector = LossDetector(RATE)
    times = index / RATE + delay
    # in two batches, the gap at their border
    lost = detector.count(index[:100] % 256, times[:100])[0]
    lost += detector.count(index[100:] % 256, times[100:])[0]
    assert lost == gap


def test_a_late_burst_is_not_a_loss() -> None:
    index = np.arange(1000)
    times = index / RATE
    # frames 500-599 held back 60 ms (190 frame periods), then delivered at once
    times[500:600] = np.maximum(times[500:600], 600 / RATE + 0.06)
    lost, received = LossDetector(RATE).count(index % 256, times)
    assert (lost, received) == (0, 1000)


def test_assembler_across_batches() -> None:
    layout = ChannelLayout.of(["first"])
    assembler = FrameAssembler(layout, SampleConverter(3.3, [(1.0, 0.0)]), RATE * 3)
    index = np.arange(6000)
    keep = (index < 1000) | (index >= 3000)  # 2000 frames lost at a batch border
    index = index[keep]
    epoch = 1_700_000_000.0
    batches = []
    for part in (index[:1000], index[1000:]):
        raw = np.zeros((len(part), 3), np.uint16)
        frames = RawFrames((part % 256).astype(np.uint8), epoch + part / RATE, raw)
        batches.append(assembler.merge([assembler.assemble(frames)]))
    # The assembler finds the loss; the file writer keeps the tally.
    assert [batch.lost for batch in batches] == [0, 2000]
    assert not hasattr(assembler, "lost")
    first = batches[0]
    assert first.frame_times[0] == 0.0
    # one channel: samples 1/channel rate apart, starting at the frame time
    np.testing.assert_allclose(
        first.sample_times[1], first.frame_times[1] + np.arange(3) / RATE / 3
    )
    assert assembler.last_time == pytest.approx(5999 / RATE)


def test_a_stream_that_starts_over_is_no_loss() -> None:
    # The answer to the start request came late, the library asked again and the
    # device started over: its first frame, 0.73 s of nothing, then counter 0 again.
    index = np.arange(3000)
    counters = np.concatenate(([0], index % 256))
    times = np.concatenate(([0.0], 0.73 + index / RATE))
    detector = LossDetector(RATE)
    lost, received = detector.count(counters[:700], times[:700])
    more_lost, more_received = detector.count(counters[700:], times[700:])
    assert (lost + more_lost, received + more_received) == (0, 3001)
    assert detector.restart == (pytest.approx(0.73), 1)
    # Also after a few frames of the first start, in one batch.
    counters = np.concatenate((np.arange(190) % 256, index % 256))
    times = np.concatenate((np.arange(190) / RATE, 190 / RATE + 0.2 + index / RATE))
    detector = LossDetector(RATE)
    assert detector.count(counters, times) == (0, 3190)
    assert detector.restart is not None and detector.restart[1] == 190


def test_frames_lost_before_counter_zero_early_are_loss() -> None:
    # A drop just before a counter 0 in the start phase: the time passed with the
    # lost frames, so it is loss, not a new start.
    index = np.arange(3000)
    index = index[(index < 200) | (index >= 256)]  # 56 lost, resumes at counter 0
    detector = LossDetector(RATE)
    assert detector.count(index % 256, index / RATE) == (56, len(index))
    assert detector.restart is None


def test_loss_after_a_new_start_is_counted_exactly() -> None:
    index = np.arange(6000)
    kept = index[(index < 3000) | (index >= 3100)]  # 100 lost after the new start
    counters = np.concatenate((np.arange(50) % 256, kept % 256))
    times = np.concatenate((np.arange(50) / RATE, 50 / RATE + 0.4 + kept / RATE))
    detector = LossDetector(RATE)
    lost, received = 0, 0
    for part in np.array_split(np.arange(len(counters)), 7):
        more_lost, more_received = detector.count(counters[part], times[part])
        lost, received = lost + more_lost, received + more_received
    assert (lost, received) == (100, len(counters))
    assert detector.restart is not None and detector.restart[1] == 50


def test_late_in_the_stream_counter_zero_after_a_gap_is_loss() -> None:
    # Past the start phase the same pattern is what it looks like: lost frames.
    index = np.arange(20_000)
    index = index[(index < 10_000) | (index >= 10_240)]  # resumes at counter 0
    assert index[10_000] % 256 == 0
    detector = LossDetector(RATE)
    lost, _ = detector.count(index % 256, index / RATE)
    assert lost == 240
    assert detector.restart is None


def test_assembler_tells_where_the_stream_started_over() -> None:
    layout = ChannelLayout.of(["first"])
    assembler = FrameAssembler(layout, SampleConverter(3.3, [(1.0, 0.0)]), RATE * 3)
    index = np.arange(1000)
    counters = np.concatenate(([0], index % 256)).astype(np.uint8)
    epoch = 1_700_000_000.0 + np.concatenate(([0.0], 0.73 + index / RATE))
    frames = RawFrames(counters, epoch, np.zeros((len(counters), 3), np.uint16))
    batch = assembler.merge([assembler.assemble(frames)])
    assert batch.lost == 0
    restart = assembler.restart
    assert restart is not None
    assert restart[0] == pytest.approx(0.73) and restart[1] == 1
