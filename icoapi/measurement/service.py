"""``MeasurementService``: start, stop and observe measurements.

Only one measurement exists at a time, from ``start`` until its file is closed
and any post-measurement metadata is written (or timed out). ``start`` checks
that under a lock *before* it touches the hardware, so concurrent starts cannot
both pass and a running measurement is never reconfigured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from icoapi.core.disk import DiskSpace, disk_space, free_bytes
from icoapi.core.events import EventBus, MeasurementChanged
from icoapi.core.paths import AppPaths
from icoapi.core.settings import Settings
from icoapi.core.tasks import TaskRegistry, run_blocking
from icoapi.core.websocket import ClientGroup
from icoapi.hdf5.layout import SensorRow, data_bytes_per_second, describe_error
from icoapi.hdf5.metadata import check_metadata_size
from icoapi.hdf5.names import measurement_file_stem
from icoapi.hdf5.writer import MeasurementWriter
from icoapi.measurement.conversion import SampleConverter
from icoapi.measurement.errors import (
    IncorrectStateError,
    InvalidInstructionsError,
    MeasurementFileError,
    MeasurementStopTimeoutError,
    PostMetaPendingError,
)
from icoapi.measurement.ift import MAX_WINDOW_S, MIN_WINDOW_S
from icoapi.measurement.layout import ChannelLayout
from icoapi.measurement.live import LiveStream
from icoapi.measurement.reserve import check_start_reserve, watch_reserve
from icoapi.measurement.runner import MeasurementRun, RunPlan
from icoapi.measurement.schemas import (
    ChannelInstruction,
    MeasurementInstructions,
    MeasurementStatus,
    Metadata,
)
from icoapi.sensors.schemas import Sensor
from icoapi.sensors.service import SensorCatalog
from icoapi.system.schemas import DEFAULT_ADC, ADCSettings
from icoapi.system.service import ICOSystem

logger = logging.getLogger(__name__)

# Stopping waits for the stream stop (with its verification and retries) and
# for the file to close.
STOP_TIMEOUT = 25.0
# Seconds a shutdown waits for stream clients to receive the tail of the data.
CLIENT_DRAIN_TIMEOUT = 5.0
# The file name of a measurement: the one name policy of icoapi.hdf5.names.
file_stem = measurement_file_stem


def unique_path(folder: Path, stem: str) -> Path:
    path = folder / f"{stem}.hdf5"
    counter = 2
    while path.exists():
        path = folder / f"{stem}__{counter}.hdf5"
        counter += 1
    return path


def sensor_row(channel: str, instruction: ChannelInstruction, sensor: Sensor) -> SensorRow:
    return SensorRow(
        channel=channel,
        name=sensor.name,
        sensor_id=sensor.sensor_id,
        unit=sensor.unit,
        dimension=sensor.dimension,
        phys_min=sensor.phys_min,
        phys_max=sensor.phys_max,
        volt_min=sensor.volt_min,
        volt_max=sensor.volt_max,
        scaling_factor=sensor.scaling_factor,
        offset=sensor.offset,
        sensor_type=sensor.sensor_type,
        channel_number=instruction.channel_number,
    )


class ActiveMeasurement:
    """The measurement that holds the service from start until its file is done."""

    def __init__(self, status: MeasurementStatus, run: MeasurementRun, stack: AsyncExitStack):
        self.status = status
        self.run = run
        self.stack = stack
        self.task: asyncio.Task[Any] | None = None


class MeasurementService:
    def __init__(
        self,
        *,
        system: ICOSystem,
        sensors: SensorCatalog,
        paths: AppPaths,
        settings: Settings,
        events: EventBus,
        tasks: TaskRegistry,
    ) -> None:
        self.system = system
        self.sensors = sensors
        self.paths = paths
        self.settings = settings
        self.events = events
        self.tasks = tasks
        self.stream_clients = ClientGroup(queue_size=256, max_stalled=600)
        self._active: ActiveMeasurement | None = None
        self._lock = asyncio.Lock()
        self._idle = asyncio.Event()
        self._idle.set()
        self.last_error: str | None = None
        # Frames received and lost by finished runs over the service's life (metrics).
        self.finished_frames = 0
        self.finished_lost_frames = 0

    # -- queries ----------------------------------------------------------------------

    def status(self) -> MeasurementStatus:
        disk = self.disk_space()
        if self._active is None:
            return MeasurementStatus(last_error=self.last_error, disk=disk)
        pending = self._active.run.post_meta.describe()
        return self._active.status.model_copy(update={"post_meta_pending": pending, "disk": disk})

    def disk_space(self) -> DiskSpace:
        """Free space, reserve and recordable seconds at the running measurement's
        data rate, or else at the default settings' (one channel)."""
        active = self._active
        if active is not None and active.status.running:
            plan = active.run.plan
            rate = data_bytes_per_second(plan.layout.channels, plan.adc.sample_rate)
        else:
            rate = data_bytes_per_second(
                ["first"], ADCSettings.model_validate(DEFAULT_ADC).sample_rate
            )
        free = free_bytes(self.paths.measurements)
        return disk_space(free, self.settings.ICOAPI_DISK_RESERVE_BYTES, rate)

    def frame_counts(self) -> tuple[int, int, float | None]:
        """Frames received and lost over the service's life (the file writers'
        counts, updated per batch) and the current run's loss ratio (None: none)."""
        frames, lost = self.finished_frames, self.finished_lost_frames
        if self._active is None:
            return frames, lost, None
        writer = self._active.run.writer
        return frames + writer.frames, lost + writer.lost_frames, writer.dataloss

    def files_in_use(self) -> set[str]:
        active = self._active
        return {active.run.plan.path.name} if active is not None else set()

    # -- start ------------------------------------------------------------------------

    async def start(self, instructions: MeasurementInstructions) -> MeasurementStatus:
        async with self._lock:
            pending = self._active.run.post_meta.describe() if self._active else None
            if pending is not None:
                raise PostMetaPendingError(
                    f"Measurement {pending.name} has ended and its file {pending.file} waits "
                    f"for post-measurement metadata (since {pending.since}; finished without "
                    f"it at {pending.until}). Send it with POST /api/v1/measurement/post_meta, "
                    "or finish without it with POST /api/v1/measurement/stop; then start again."
                )
            if self._active is not None:
                raise IncorrectStateError(
                    "A measurement is still running or finishing; stop it or wait until "
                    "its file is closed."
                )
            layout, sensors = self._check_instructions(instructions)
            await run_blocking(
                check_start_reserve,
                self.paths.measurements,
                self.settings.ICOAPI_DISK_RESERVE_BYTES,
                layout.channels,
                instructions,
            )
            stack = AsyncExitStack()
            writer: MeasurementWriter | None = None
            try:
                await stack.enter_async_context(
                    self.system.measurement_lease(instructions.mac_address)
                )
                plan = await self._prepare(instructions, layout, sensors)
                writer = MeasurementWriter(
                    plan.path,
                    channels=list(layout.channels),
                    sensors=[
                        sensor_row(channel, getattr(instructions, channel), sensor_def)
                        for channel, sensor_def in zip(layout.channels, sensors, strict=True)
                    ],
                    attributes=self._file_attributes(plan, instructions),
                    checkpoint_interval=self.settings.ICOAPI_JOURNAL_CHECKPOINT_SECONDS,
                )
                await run_blocking(writer.start)
                if writer.error is not None:
                    raise MeasurementFileError(
                        f"Cannot create the measurement file {plan.path.name}: "
                        f"{describe_error(writer.error)}"
                    )
                if instructions.meta is not None:
                    writer.write_metadata("pre", instructions.meta.model_dump())
            except BaseException as error:
                if writer is not None:
                    # The file was created: it says why it holds no data.
                    await writer.aclose({"measurement_status": f"error: {describe_error(error)}"})
                await stack.aclose()
                raise
            status = MeasurementStatus(
                running=True,
                name=plan.name,
                start_time=plan.start_time,
                tool_name=plan.tool_name,
                instructions=instructions,
            )
            live = LiveStream(self.stream_clients, self.settings.WEBSOCKET_UPDATE_RATE, layout)
            run = MeasurementRun(
                plan,
                self.system,
                writer,
                live,
                self.events,
                self.settings.POST_META_TIMEOUT,
                on_stream_closed=self._stream_closed,
            )
            active = ActiveMeasurement(status, run, stack)
            self._active = active
            self._idle.clear()
            active.task = self.tasks.spawn(self._drive(active), name=f"measurement {plan.name}")
            self.last_error = None
        self.events.publish(MeasurementChanged())
        logger.info(
            "Measurement %s started: channels %s, %.1f Hz per channel, file %s",
            plan.name,
            ",".join(layout.channels),
            plan.channel_rate,
            plan.path.name,
        )
        return status

    def _check_instructions(
        self, instructions: MeasurementInstructions
    ) -> tuple[ChannelLayout, list[Sensor]]:
        """Everything about the instructions that can be refused is refused here,
        before the device or the disk is touched."""
        try:
            layout = ChannelLayout.from_numbers(
                instructions.first.channel_number,
                instructions.second.channel_number,
                instructions.third.channel_number,
            )
        except ValueError as error:
            raise InvalidInstructionsError(f"Invalid channels: {error}.") from error
        if instructions.adc is None:
            raise InvalidInstructionsError("Invalid ADC configuration.")
        if instructions.meta is not None:
            check_metadata_size(instructions.meta.model_dump())
        if instructions.ift_requested:
            if instructions.ift_channel not in layout.channels:
                raise InvalidInstructionsError(
                    f"ift_channel '{instructions.ift_channel}' is not an enabled channel "
                    f"(enabled: {', '.join(layout.channels)})."
                )
            if not MIN_WINDOW_S * 1000 <= instructions.ift_window_width <= MAX_WINDOW_S * 1000:
                raise InvalidInstructionsError("ift_window_width must be 5 to 1000 ms.")
        sensors = [
            self._sensor_for(getattr(instructions, channel), channel) for channel in layout.channels
        ]
        return layout, sensors

    def _sensor_for(self, instruction: ChannelInstruction, channel: str) -> Sensor:
        sensor = self.sensors.sensor_for_channel(instruction.sensor_id, instruction.channel_number)
        if sensor is None:
            raise InvalidInstructionsError(f"No sensor for channel {channel}.")
        if instruction.sensor_id and sensor.sensor_id != instruction.sensor_id:
            raise InvalidInstructionsError(
                f"Unknown sensor_id '{instruction.sensor_id}' for channel {channel}; "
                "see GET /api/v1/sensor."
            )
        return sensor

    async def _prepare(
        self,
        instructions: MeasurementInstructions,
        layout: ChannelLayout,
        sensors: list[Sensor],
    ) -> RunPlan:
        assert instructions.adc is not None
        # Convert with what the device really uses, not with what was asked for.
        adc, tool_name = await self.system.configure_measurement(
            instructions.adc.with_defaults(),
            layout.sensor_configuration() if layout.needs_channel_mapping else None,
        )
        now = datetime.now()
        path = unique_path(self.paths.measurements, file_stem(instructions.name, now))
        converter = SampleConverter(
            adc.reference_voltage,
            [(sensor_def.scaling_factor, sensor_def.offset) for sensor_def in sensors],
        )
        return RunPlan(
            instructions=instructions,
            layout=layout,
            adc=adc,
            converter=converter,
            path=path,
            name=path.stem,
            tool_name=tool_name,
            start_time=now.isoformat(),
        )

    def _file_attributes(
        self, plan: RunPlan, instructions: MeasurementInstructions
    ) -> dict[str, Any]:
        """The measurement's own attributes (the writer adds the layout's)."""
        return {
            "adc_reference_voltage": str(plan.adc.reference_voltage),
            "adc_prescaler": plan.adc.prescaler,
            "adc_acquisition_time": plan.adc.acquisition_time,
            "adc_oversampling_rate": plan.adc.oversampling_rate,
            "sample_rate": plan.adc.sample_rate,
            "channel_sample_rate": plan.channel_rate,
            "sensor_device_name": plan.tool_name,
            "sensor_device_mac": instructions.mac_address,
            "measurement_name": instructions.name or "",
        }

    # -- run lifecycle ----------------------------------------------------------------

    async def _drive(self, active: ActiveMeasurement) -> None:
        run = active.run
        watcher = asyncio.create_task(
            watch_reserve(
                run,
                self.paths.measurements,
                self.settings.ICOAPI_DISK_RESERVE_BYTES,
                self._reserve_reached,
            ),
            name="measurement-disk-reserve",
        )
        try:
            result = await run.run()
            if result.error is not None:
                self.last_error = f"{type(result.error).__name__}: {result.error}"
                await self._recover_link()
            elif result.status.startswith("error"):
                self.last_error = result.status
        finally:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
            # Counted as finished and no longer active in one step (no await).
            self.finished_frames += run.writer.frames
            self.finished_lost_frames += run.writer.lost_frames
            if self._active is active:
                self._active = None
            self._idle.set()
            self.events.publish(MeasurementChanged())

    def _reserve_reached(self, why: str) -> None:
        self.last_error = why
        self.events.publish(MeasurementChanged())

    async def _recover_link(self) -> None:
        if not await self.system.verify_device_link():
            logger.warning("The sensor device is no longer connected")

    async def _stream_closed(self) -> None:
        """The stream ended and the file is closed: release the device, honour
        ``disconnect_after_measurement`` and tell clients ``running`` is false."""
        active = self._active
        assert active is not None  # called by the active measurement's run
        with contextlib.suppress(Exception):
            await active.stack.aclose()
        if active.status.instructions and active.status.instructions.disconnect_after_measurement:
            try:
                await self.system.disconnect()
            except Exception as error:
                logger.warning("Could not disconnect after the measurement: %s", error)
        active.status = active.status.model_copy(update={"running": False})
        self.events.publish(MeasurementChanged())

    # -- stop, post-meta, shutdown -------------------------------------------------------

    async def stop(self) -> None:
        """Stop the running measurement; return once its data is in the file.

        A measurement that already waits for post-measurement metadata is
        finished without it (the web client's "Finish Without Post-Metadata");
        this returns once it is done, so a new measurement can start."""
        active = self._active
        if active is None:
            return
        active.run.request_stop()
        finishing = active.run.post_meta.pending and active.run.provide_post_meta(None)
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await active.run.file_closed.wait()
                if finishing:
                    await self._idle.wait()
        except TimeoutError as error:
            raise MeasurementStopTimeoutError() from error

    def post_meta(self, metadata: Metadata) -> bool:
        """Hand post-measurement metadata to the measurement waiting for it.
        Returns False if none is waiting (the metadata is then dropped).

        :raises MetadataTooLargeError: over the metadata size limit."""
        check_metadata_size(metadata.model_dump())
        active = self._active
        if active is None or not active.status.instructions:
            return False
        if not active.status.instructions.wait_for_post_meta:
            return False
        active.run.provide_post_meta(metadata)
        return True

    async def shutdown(self) -> None:
        active = self._active
        if active is None:
            return
        logger.info("Stopping measurement %s for shutdown", active.status.name)
        clients = list(self.stream_clients.clients)
        active.run.request_stop()
        # Unblock a post-meta wait: the file is already closed, the metadata is lost.
        active.run.provide_post_meta(None)
        if active.task is not None:
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await asyncio.shield(active.task)
            except (TimeoutError, Exception):
                active.task.cancel()
                with contextlib.suppress(BaseException):
                    await active.task
        # Stream clients receive the tail of the data before the server closes them.
        await asyncio.gather(*(client.wait_closed(CLIENT_DRAIN_TIMEOUT) for client in clients))

    async def wait_idle(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await self._idle.wait()
