"""One measurement, from the opened data stream to the closed file.

The run reads icotronic's stream buffer in batches on the event loop (the buffer
is filled there by python-can's notifier), converts each batch with numpy, hands
it to the HDF5 writer thread and to the live stream, and never waits for either:
the writer has a bounded queue and WebSocket clients have their own queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tables
from icotronic.can.node.sensor import SensorNode
from icotronic.can.streaming import StreamingData

from icoapi.core.events import (
    EventBus,
    MeasurementChanged,
    MeasurementFileFinished,
    PostMetaCompleted,
    PostMetaRequested,
)
from icoapi.core.tasks import run_blocking
from icoapi.measurement.conversion import SampleConverter
from icoapi.measurement.ift import IFT_MAX_POINTS, compute_ift
from icoapi.measurement.layout import ChannelMapping
from icoapi.measurement.live import LiveStream
from icoapi.measurement.metadata import write_metadata
from icoapi.measurement.post_meta import PostMetaWait
from icoapi.measurement.schemas import MeasurementInstructions, Metadata
from icoapi.measurement.storage import HDF5_LOCK, MeasurementWriter
from icoapi.system.schemas import ADCSettings
from icoapi.system.service import ICOSystem

logger = logging.getLogger(__name__)

# Seconds without a frame before the stream counts as broken.
STREAM_TIMEOUT = 5.0
# Frames taken from the stream buffer per batch at most.
MAX_BATCH_FRAMES = 4096
DATALOSS_INTERVAL = 1.0
# Seconds between hand-overs of converted data to the file writer thread.
WRITE_INTERVAL = 0.1


@dataclass
class RunPlan:
    """Everything a run needs, settled before the stream opens."""

    instructions: MeasurementInstructions
    layout: ChannelMapping
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
class LossCounter:
    lost: int = 0
    retrieved: int = 0

    def add(self, lost: int, retrieved: int) -> None:
        self.lost += lost
        self.retrieved += retrieved

    @property
    def dataloss(self) -> float:
        total = self.lost + self.retrieved
        return self.lost / total if total else 0.0


@dataclass
class RunResult:
    status: str = "completed"
    error: BaseException | None = None
    frames: int = 0
    dataloss: float = 0.0
    first_sample_epoch: float | None = None


class MeasurementRun:
    """Drives one measurement; :meth:`run` is its task."""

    def __init__(
        self,
        plan: RunPlan,
        system: ICOSystem,
        sensor: SensorNode,
        writer: MeasurementWriter,
        live: LiveStream,
        events: EventBus,
        post_meta_timeout: float,
        on_stream_closed: Callable[[], Awaitable[None]],
    ) -> None:
        self.plan = plan
        self.system = system
        self.sensor = sensor
        self.writer = writer
        self.live = live
        self.events = events
        self.post_meta_timeout = post_meta_timeout
        self.on_stream_closed = on_stream_closed
        self.stop_requested = asyncio.Event()
        self.stream_closed = asyncio.Event()
        self.file_closed = asyncio.Event()
        self.post_meta = PostMetaWait(plan.name, plan.path.name, post_meta_timeout)
        self.total = LossCounter()
        self.period = LossCounter()
        self.result = RunResult()
        self._t0: float | None = None
        self._last_timestamp = 0.0
        self._unwritten: list[tuple[Any, Any, Any]] = []
        self._unwritten_frames = 0
        self._last_handover = time.monotonic()

    # -- control ----------------------------------------------------------------------

    def request_stop(self) -> None:
        self.stop_requested.set()

    def provide_post_meta(self, metadata: Metadata | None) -> bool:
        """Deliver the post-measurement metadata; ``None`` finishes without it.
        False if the wait is over already."""
        if metadata is None:
            return self.post_meta.finish_without()
        return self.post_meta.provide(metadata)

    # -- the task ---------------------------------------------------------------------

    async def run(self) -> RunResult:
        try:
            await self._acquire()
            await self._finish_file()
            await self.on_stream_closed()
            await self._send_ift()
        finally:
            # Whatever happened above, every client learns the measurement ended.
            self.live.close()
            self.stream_closed.set()
            self.file_closed.set()
        if self.plan.instructions.wait_for_post_meta:
            await self._wait_for_post_meta()
        self.events.publish(MeasurementFileFinished(self.plan.path, self.result.status))
        return self.result

    async def _acquire(self) -> None:
        layout = self.plan.layout
        stream_cm = self.sensor.open_data_stream(
            layout.streaming_configuration(), timeout=STREAM_TIMEOUT
        )
        stream = None
        ticker = asyncio.create_task(self._report_dataloss(), name="dataloss-ticker")
        try:
            stream = await self.system.call(stream_cm.__aenter__)
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
            # Whatever ended the run, everything received goes to the file.
            try:
                self._hand_over_to_file()
            except Exception as error:
                logger.error("Could not hand the last data to the file: %s", error)
            if stream is not None:
                await self._stop_stream(stream_cm, stream)
        self.result.dataloss = self.total.dataloss
        self.result.frames = self.total.retrieved
        if self.stop_requested.is_set() and self.result.error is None:
            self.result.status = "stopped"
        self.live.add_dataloss(self.total.dataloss, self._last_timestamp)
        failure = self.result.error
        if failure is not None:
            self.live.send_object(
                {"error": True, "type": type(failure).__name__, "message": str(failure)}
            )
        self.live.flush()

    async def _stop_stream(self, stream_cm: Any, stream: Any) -> None:
        """Stop streaming on the device. After an error one short attempt only:
        the link is probably gone, and the library's own exit would retry for
        about 10 s (and hide the original error)."""
        failed = self.result.error is not None
        try:
            if not failed:
                await self.system.call(lambda: stream_cm.__aexit__(None, None, None))
                return
            stream.stop()
            self.sensor.spu.notifier.remove_listener(stream)
            await self.system.call(
                lambda: self.sensor.stop_streaming_data(retries=1, ignore_errors=True),
                timeout=3,
            )
        except Exception as error:
            logger.warning("Could not stop the data stream cleanly: %s", error)
            if not failed:
                self.result.error = error
                self.result.status = f"error: {type(error).__name__}: {error}"

    async def _next_batch(self, stream: Any) -> list[tuple[StreamingData, int]]:
        # ``__anext__`` keeps the library's timeout and buffer checks; what else
        # is already queued is taken in the same batch.
        batch = [await stream.__anext__()]
        queue = stream.queue
        while not queue.empty() and len(batch) < MAX_BATCH_FRAMES:
            batch.append(queue.get_nowait())
        return batch

    async def _consume(self, stream: Any) -> None:
        plan = self.plan
        layout = plan.layout
        limit = plan.instructions.time
        channel_rate = plan.channel_rate
        # Offsets of the samples inside a frame, as the file stores them: the
        # first at the frame's timestamp, the next ones 1/rate apart.
        offsets = np.arange(layout.samples_per_frame) / channel_rate
        active = layout.active
        while not self.stop_requested.is_set():
            batch = await self._next_batch(stream)
            count = len(batch)
            counters = np.fromiter((item[0].counter for item in batch), np.uint8, count)
            stamps = np.fromiter((item[0].timestamp for item in batch), np.float64, count)
            lost = sum(item[1] for item in batch)
            raw = np.array([item[0].values for item in batch], dtype=np.uint16)
            if self._t0 is None:
                self._t0 = float(stamps[0])
                self.result.first_sample_epoch = self._t0
                self.writer.set_attributes(
                    Start_Time=datetime.fromtimestamp(self._t0).isoformat(),
                    first_sample_epoch=self._t0,
                )
            relative = stamps - self._t0
            reached_limit = False
            if limit is not None and relative[-1] >= limit:
                keep = int(np.searchsorted(relative, limit, side="right"))
                counters, relative, raw = counters[:keep], relative[:keep], raw[:keep]
                reached_limit = True
            if len(relative):
                values = plan.converter.convert(raw, active)
                self._queue_for_file(counters, relative, values)
                self.total.add(lost, len(relative))
                self.period.add(lost, len(relative))
                self._last_timestamp = float(relative[-1])
                if self.live.active:
                    self._publish(relative, values, counters, offsets)
            if self.writer.error is not None:
                raise self.writer.error
            if reached_limit:
                break

    def _queue_for_file(
        self,
        counters: np.ndarray[Any, Any],
        relative: np.ndarray[Any, Any],
        values: np.ndarray[Any, Any],
    ) -> None:
        # Batches go to the writer thread a few times a second rather than with
        # every burst of frames: fewer thread wake-ups, same data.
        self._unwritten.append((counters, relative, values))
        self._unwritten_frames += len(counters)
        now = time.monotonic()
        if now - self._last_handover >= WRITE_INTERVAL or self._unwritten_frames >= 8192:
            self._hand_over_to_file()

    def _hand_over_to_file(self) -> None:
        self._last_handover = time.monotonic()
        if not self._unwritten:
            return
        parts = self._unwritten
        self._unwritten = []
        self._unwritten_frames = 0
        self.writer.append(
            np.concatenate([part[0] for part in parts]),
            np.concatenate([part[1] for part in parts]),
            np.concatenate([part[2] for part in parts]),
        )

    def _publish(
        self,
        relative: np.ndarray[Any, Any],
        values: np.ndarray[Any, Any],
        counters: np.ndarray[Any, Any],
        offsets: np.ndarray[Any, Any],
    ) -> None:
        channels = self.plan.layout.channels
        if len(channels) == 1:
            # Three samples of one channel per frame: every sample is streamed
            # with its own timestamp.
            timestamps = (relative[:, None] + offsets[None, :]).reshape(-1)
            samples = values.reshape(-1, 1)
            counters = np.repeat(counters, 3)
        else:
            timestamps = relative
            samples = values
        self.live.add_samples(channels, timestamps, samples, counters)

    async def _report_dataloss(self) -> None:
        """Tell clients the loss since the last report, once a second by clock."""
        while True:
            await asyncio.sleep(DATALOSS_INTERVAL)
            if self.period.retrieved or self.period.lost:
                self.live.add_dataloss(self.period.dataloss, self._last_timestamp)
                self.period = LossCounter()
                self.live.flush()

    async def _finish_file(self) -> None:
        final = {
            "dataloss": self.result.dataloss,
            "measurement_status": self.result.status,
            "frames": self.result.frames,
            "lost_frames": self.total.lost,
        }
        try:
            await self.writer.aclose(final)
        except Exception as error:
            logger.error("Could not close measurement file %s: %s", self.plan.path, error)
            if self.result.error is None:
                self.result.error = error
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
        column = self.plan.layout.column(instructions.ift_channel)
        started = time.monotonic()
        try:
            points = await run_blocking(
                compute_ift,
                self.plan.path,
                column,
                self.plan.channel_rate,
                instructions.ift_window_width / 1000,
                IFT_MAX_POINTS,
            )
        except Exception as error:
            logger.warning("IFT value not computed: %s", error)
            self.live.send_object(
                {"error": True, "type": type(error).__name__, "message": f"IFT: {error}"}
            )
            return
        logger.info(
            "IFT value computed for %d points in %.2f s", len(points), time.monotonic() - started
        )
        self.live.send_object(
            [
                {
                    "timestamp": 1,
                    "first": None,
                    "second": None,
                    "third": None,
                    "ift": points,
                    "counter": 1,
                    "dataloss": None,
                }
            ]
        )

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


def append_metadata(path: Path, prefix: Literal["pre", "post"], metadata: dict[str, Any]) -> None:
    """Add metadata to a closed measurement file."""
    with HDF5_LOCK, tables.open_file(str(path), "a") as h5file:
        write_metadata(h5file, prefix, metadata)
