"""One measurement, from the opened data stream to the closed file.

The run reads the device's frames in batches on the event loop (through the
:class:`~icoapi.system.stream.DataStream` that ``ICOSystem`` opened), turns each
batch into a :class:`~icoapi.measurement.frames.FrameBatch` once, and hands that
to the HDF5 writer thread and to the live stream without waiting for either: the
writer has a bounded queue and WebSocket clients have their own queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from icoapi.core.events import (
    EventBus,
    MeasurementChanged,
    MeasurementFileFinished,
    PostMetaCompleted,
    PostMetaRequested,
)
from icoapi.core.tasks import run_blocking
from icoapi.hdf5.layout import describe_error, loss_fraction, status_with_problems
from icoapi.hdf5.metadata import append_metadata
from icoapi.hdf5.writer import MeasurementWriter
from icoapi.measurement.conversion import SampleConverter
from icoapi.measurement.frames import FrameAssembler, FrameBatch
from icoapi.measurement.ift import IFT_MAX_POINTS, compute_ift
from icoapi.measurement.layout import ChannelLayout
from icoapi.measurement.live import LiveStream
from icoapi.measurement.post_meta import PostMetaWait
from icoapi.measurement.schemas import MeasurementInstructions, Metadata
from icoapi.system.schemas import ADCSettings
from icoapi.system.service import ICOSystem
from icoapi.system.stream import DataStream

logger = logging.getLogger(__name__)

# Frames taken from the stream buffer per batch at most.
MAX_BATCH_FRAMES = 4096
DATALOSS_INTERVAL = 1.0
# Seconds between hand-overs of converted data to the file writer thread.
WRITE_INTERVAL = 0.1
# Longest time stopping the stream (with verification and retries) may take.
STOP_STREAM_TIMEOUT = 12.0
# A device that kept streaming through every stop request is asked again this
# many times, this many seconds apart, once the file is closed (before the device
# is given back): otherwise it would stream until the next start.
STOP_AGAIN_ATTEMPTS = 3
STOP_AGAIN_INTERVAL = 2.0
# The rate the frame timestamps show may differ this much from the stated one
# (clock jitter) before the file's status reports a mismatch.
RATE_TOLERANCE = 0.05
# Seconds of data needed before the rate is cross-checked.
RATE_CHECK_SECONDS = 1.0


@dataclass
class RunPlan:
    """Everything a run needs, settled before the stream opens."""

    instructions: MeasurementInstructions
    layout: ChannelLayout
    adc: ADCSettings
    converter: SampleConverter
    path: Path
    name: str
    tool_name: str
    start_time: str

    @property
    def channel_rate(self) -> float:
        return self.layout.channel_rate(self.adc.sample_rate)


@dataclass
class RunResult:
    status: str = "completed"
    error: BaseException | None = None
    frames: int = 0
    dataloss: float = 0.0
    problems: list[str] | None = None

    def add_problem(self, problem: str) -> None:
        """Something the file's status must report (the data is still there)."""
        self.problems = [*(self.problems or []), problem]


class MeasurementRun:
    """Drives one measurement; :meth:`run` is its task."""

    def __init__(
        self,
        plan: RunPlan,
        system: ICOSystem,
        writer: MeasurementWriter,
        live: LiveStream,
        events: EventBus,
        post_meta_timeout: float,
        on_stream_closed: Callable[[], Awaitable[None]],
    ) -> None:
        self.plan = plan
        self.system = system
        self.writer = writer
        self.live = live
        self.events = events
        self.post_meta_timeout = post_meta_timeout
        self.on_stream_closed = on_stream_closed
        self.stop_requested = asyncio.Event()
        self.stop_reason: str | None = None
        self.file_closed = asyncio.Event()
        self.post_meta = PostMetaWait(plan.name, plan.path.name, post_meta_timeout)
        self.frames = FrameAssembler(plan.layout, plan.converter, plan.adc.sample_rate)
        # The writer's counts (frames, lost frames) at the last loss report.
        self._reported = (0, 0)
        self._stream: DataStream | None = None
        self._still_streaming = False
        self.result = RunResult()
        self._start_time_written = False
        self._unwritten: list[FrameBatch] = []
        self._unwritten_frames = 0
        self._last_handover = time.monotonic()

    # -- control ----------------------------------------------------------------------

    def request_stop(self, reason: str | None = None) -> None:
        """Stop; a ``reason`` goes into the file's status (``stopped: <reason>``)
        and, after the last samples, to the stream clients."""
        if reason is not None and self.stop_reason is None:
            self.stop_reason = reason
        self.stop_requested.set()
        if self._stream is not None:
            # A stalled stream must not hold the stop for the stream timeout.
            self._stream.wake()

    def provide_post_meta(self, metadata: Metadata | None) -> bool:
        """Deliver the post-measurement metadata; ``None`` finishes without it.
        False if the wait is over already."""
        if metadata is None:
            return self.post_meta.finish_without()
        return self.post_meta.provide(metadata)

    # -- the task ---------------------------------------------------------------------

    async def run(self) -> RunResult:
        try:
            try:
                try:
                    await self._acquire()
                    await self._finish_file()
                    await self._stop_again()
                finally:
                    # The one place the device is given back (the lease ends).
                    await self.on_stream_closed()
                await self._send_ift()
            finally:
                # Whatever happened above, every client learns the measurement ended
                # (after every sample the file got).
                self.live.close()
                self.file_closed.set()
            if self.plan.instructions.wait_for_post_meta:
                await self._wait_for_post_meta()
        finally:
            if self.plan.path.exists():
                self.events.publish(MeasurementFileFinished(self.plan.path, self.result.status))
        return self.result

    async def _acquire(self) -> None:
        layout = self.plan.layout
        stream: DataStream | None = None
        ticker = asyncio.create_task(self._report_dataloss(), name="dataloss-ticker")
        try:
            stream = await self.system.open_data_stream(
                layout.streaming_configuration(), self.frames.frame_rate
            )
            self._stream = stream
            if self.stop_requested.is_set():
                stream.wake()
            logger.info("Measurement %s streaming", self.plan.name)
            await self._consume(stream)
        except Exception as error:
            self.result.error = error
            self.result.status = f"error: {type(error).__name__}: {error}"
            logger.error(
                "Measurement %s failed: %s: %s", self.plan.name, type(error).__name__, error
            )
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            # Whatever ended the run, everything received goes to the file, and
            # stream clients get the last samples now, not after the stop check.
            try:
                self._hand_over_to_file()
            except Exception as error:
                logger.error("Could not hand the last data to the file: %s", error)
                self.result.add_problem(f"last data not written: {error}")
            self.live.flush()
            if stream is not None:
                await self._stop_stream(stream)
        # The file's counts are the run's (writer.frames and .dataloss).
        self.result.dataloss = self.writer.dataloss
        self.result.frames = self.writer.frames
        for problem in self.writer.problems:  # e.g. metadata the file could not take
            self.result.add_problem(problem)
        self._check_rate()
        if self.stop_requested.is_set() and self.result.error is None:
            self.result.status = "stopped" + (f": {self.stop_reason}" if self.stop_reason else "")
        self.result.status = status_with_problems(self.result.status, self.result.problems or [])
        self.live.add_dataloss(self.result.dataloss, self.frames.last_time)
        failure = self.result.error
        if failure is not None:
            self.live.send_error(type(failure).__name__, str(failure))
        elif self.result.problems:
            self.live.send_error("MeasurementProblem", self.result.status)
        elif self.stop_reason is not None:
            self.live.send_error("MeasurementStopped", self.result.status)

    async def _stop_stream(self, stream: DataStream) -> None:
        failed = self.result.error is not None
        report = await stream.stop(after_error=failed, timeout=STOP_STREAM_TIMEOUT)
        self._still_streaming = report.streaming
        if not report.stopped:
            logger.error("Measurement %s: %s", self.plan.name, report.detail)
            if not failed:
                self.result.add_problem(report.detail)
        elif report.detail:
            logger.warning("Measurement %s stream stopped after: %s", self.plan.name, report.detail)

    async def _stop_again(self) -> None:
        """Ask a device that kept streaming through every stop request again,
        while it is still leased (its file is closed: nothing changes there)."""
        stream = self._stream
        if stream is None or not self._still_streaming:
            return
        # The data is in the file: a waiting stop request need not wait for this.
        self.file_closed.set()
        for attempt in range(1, STOP_AGAIN_ATTEMPTS + 1):
            await asyncio.sleep(STOP_AGAIN_INTERVAL)
            report = await stream.stop(after_error=False, timeout=STOP_STREAM_TIMEOUT, attempts=1)
            if report.stopped:
                logger.info(
                    "Measurement %s: the device stopped streaming when asked again (%d)",
                    self.plan.name,
                    attempt,
                )
                return
            if not report.streaming:  # no answer and no frames: the link is gone
                break
        logger.error(
            "Measurement %s: the device still streams after %d more stop requests; "
            "disconnect it or reset the STU",
            self.plan.name,
            STOP_AGAIN_ATTEMPTS,
        )

    def _check_rate(self) -> None:
        """The rate the file states must be the rate the data arrived at: the
        frames the file counts (received and lost) over the time they span,
        from where the stream last started over (a repeated start request)."""
        frames = self.writer.frames + self.writer.lost_frames
        span = self.frames.last_time
        restart = self.frames.restart
        if restart is not None:
            started, frames_before = restart
            frames -= frames_before
            span -= started
        if frames < 2 or span < RATE_CHECK_SECONDS:
            return
        measured = (frames - 1) / span
        stated = self.frames.frame_rate
        if abs(measured / stated - 1) > RATE_TOLERANCE:
            layout = self.plan.layout
            self.result.add_problem(
                f"sample rate mismatch: the file states {self.plan.adc.sample_rate:.1f} Hz, "
                f"the frame timestamps show "
                f"{measured * layout.values_per_frame:.1f} Hz"
            )

    async def _consume(self, stream: DataStream) -> None:
        limit = self.plan.instructions.time
        while not self.stop_requested.is_set():
            raw = await stream.read(MAX_BATCH_FRAMES)
            if not len(raw):  # woken by a stop request
                continue
            batch = self.frames.assemble(raw)
            if not self._start_time_written and self.frames.start_time is not None:
                self.writer.set_attributes(Start_Time=self.frames.start_time)
                self._start_time_written = True
            reached_limit = False
            if limit is not None and batch.frame_times[-1] >= limit:
                keep = int(np.searchsorted(batch.frame_times, limit, side="right"))
                batch = batch.head(keep)
                reached_limit = True
            if len(batch):
                self._queue_for_file(batch)
                self.live.add_batch(batch)
            if self.writer.error is not None:
                raise self.writer.error
            if reached_limit:
                break

    def _queue_for_file(self, batch: FrameBatch) -> None:
        # Batches go to the writer thread a few times a second rather than with
        # every burst of frames: fewer thread wake-ups, same data.
        self._unwritten.append(batch)
        self._unwritten_frames += len(batch)
        now = time.monotonic()
        if now - self._last_handover >= WRITE_INTERVAL or self._unwritten_frames >= 8192:
            self._hand_over_to_file()

    def _hand_over_to_file(self) -> None:
        self._last_handover = time.monotonic()
        if not self._unwritten:
            return
        batch = self.frames.merge(self._unwritten)
        self._unwritten = []
        self._unwritten_frames = 0
        self.writer.append(batch.counters, batch.sample_times, batch.values, lost=batch.lost)

    async def _report_dataloss(self) -> None:
        """Tell clients the loss since the last report, once a second by clock,
        from the file writer's counts (the measurement's one tally)."""
        while True:
            await asyncio.sleep(DATALOSS_INTERVAL)
            counts = (self.writer.frames, self.writer.lost_frames)
            frames, lost = (
                now - before for now, before in zip(counts, self._reported, strict=True)
            )
            if frames or lost:
                self.live.add_dataloss(loss_fraction(lost, frames), self.frames.last_time)
                self._reported = counts

    async def _finish_file(self) -> None:
        try:
            await self.writer.aclose({"measurement_status": self.result.status})
        except Exception as error:
            logger.error("Could not close measurement file %s: %s", self.plan.path, error)
            if self.result.error is None:
                self.result.error = error
        if self.writer.error is not None and self.result.error is None:
            self.result.error = self.writer.error
            self.result.status = f"error: {describe_error(self.writer.error)}"
        else:  # problems that came up while the file was closed
            self.result.status = status_with_problems(self.result.status, self.writer.problems)
        logger.info(
            "Measurement %s finished (%s): %d frames, data loss %.2f %%, file %s",
            self.plan.name,
            self.result.status,
            self.result.frames,
            self.result.dataloss * 100,
            self.plan.path.name,
        )

    async def _send_ift(self) -> None:
        instructions = self.plan.instructions
        if not instructions.ift_requested or self.result.frames == 0:
            return
        started = time.monotonic()
        try:
            points = await run_blocking(
                compute_ift,
                self.plan.path,
                instructions.ift_channel,
                self.plan.channel_rate,
                instructions.ift_window_width / 1000,
                IFT_MAX_POINTS,
            )
        except Exception as error:
            logger.warning("IFT value not computed: %s", error)
            self.live.send_error(type(error).__name__, f"IFT: {error}")
            return
        logger.info(
            "IFT value computed for %d points in %.2f s", len(points), time.monotonic() - started
        )
        self.live.send_ift(points)

    async def _wait_for_post_meta(self) -> None:
        self.post_meta.begin()
        self.events.publish(PostMetaRequested())
        self.events.publish(MeasurementChanged())  # the status shows the pending wait
        metadata = await self.post_meta.wait()
        # However it ended, clients close their post-metadata dialogs.
        self.events.publish(PostMetaCompleted())
        if metadata is None:
            return
        try:
            await run_blocking(append_metadata, self.plan.path, "post", metadata.model_dump())
        except Exception as error:
            logger.error("Could not write post-measurement metadata: %s", error)
            return
        logger.info("Post-measurement metadata written to %s", self.plan.path.name)
