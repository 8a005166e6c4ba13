"""``DataspaceService``: the dataspace connection, wired to the upload queue,
the uploader (:mod:`icoapi.dataspace.uploader`) and the file statuses
(:mod:`icoapi.dataspace.statuses`).

It loads ``dataspace.yaml`` (again whenever it changes), builds the connector
the file names, keeps the connection's health, and offers the operations of the
HTTP layer. Nothing here blocks the event loop: network, file and database work
runs in threads, and the state only reads memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from icoapi.configuration.errors import ConfigSchemaError
from icoapi.configuration.kinds import validate_document
from icoapi.core.documents import YamlSyntaxError, decode_yaml_bytes, parse_yaml
from icoapi.core.events import (
    CloudChanged,
    ConfigChanged,
    Event,
    EventBus,
    MeasurementFileFinished,
)
from icoapi.core.paths import AppPaths
from icoapi.core.tasks import TaskRegistry, run_blocking
from icoapi.dataspace.config import DATASPACE, enabled_connection
from icoapi.dataspace.connectors import build_connector
from icoapi.dataspace.connectors.base import ConnectionSettings, Connector, ConnectorOptions
from icoapi.dataspace.errors import (
    DataspaceDisabledError,
    DataspaceError,
    DataspaceMisconfiguredError,
    DataspaceTimeoutError,
    DataspaceUnreachableError,
    FileIdRequiredError,
    JobNotFoundError,
    JobStateError,
)
from icoapi.dataspace.options import DataspaceOptions
from icoapi.dataspace.queue import FINISHED_STATES, Job, JobState, UploadQueue
from icoapi.dataspace.schemas import CloudState, RemoteFile, UploadJob, UploadProgress
from icoapi.dataspace.statuses import LocalFile, RemoteListing, cached_checksum, file_statuses
from icoapi.dataspace.uploader import UploadCounts, Uploader
from icoapi.files.schemas import FileCloudDetails
from icoapi.hdf5.validation import FileVerdicts

logger = logging.getLogger(__name__)

NOT_CONNECTED = "Not connected yet."
# The HTTP libraries log full URLs at DEBUG, and presigned URLs carry signatures.
QUIET_LIBRARIES = ("urllib3", "botocore", "boto3", "s3transfer")

ConnectorFactory = Callable[[ConnectionSettings, ConnectorOptions], Connector]


def quiet_http_libraries() -> None:
    for name in QUIET_LIBRARIES:
        library = logging.getLogger(name)
        if library.getEffectiveLevel() < logging.INFO:
            library.setLevel(logging.INFO)


class DataspaceService:
    def __init__(
        self,
        paths: AppPaths,
        events: EventBus,
        tasks: TaskRegistry,
        options: DataspaceOptions | None = None,
        connector_factory: ConnectorFactory = build_connector,
        verdicts: FileVerdicts | None = None,
    ) -> None:
        quiet_http_libraries()
        self.options = options or DataspaceOptions()
        self.config_path = paths.config / DATASPACE.filename
        self.measurements = paths.measurements
        # The hostile-file check's cache, shared with the file routes.
        self.verdicts = verdicts or FileVerdicts()
        self.events = events
        self.tasks = tasks
        self.queue = UploadQueue(paths.root / "dataspace" / "uploads.sqlite3")
        self.listing = RemoteListing()
        self.connector_factory = connector_factory
        self.connection: ConnectionSettings | None = None
        self.connector: Connector | None = None
        self.enabled = False
        self.healthy = False
        self.reason: str | None = None
        self._config_stamp: tuple[int, int] | None = None
        self._config_lock = threading.Lock()
        self._cleaned: Connector | None = None
        self._queued = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self.uploader = Uploader(self)
        self._worker: asyncio.Task[None] | None = None
        self._unsubscribe = events.subscribe(self._on_event)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Load the configuration and start the uploader (which connects)."""
        self._loop = asyncio.get_running_loop()
        await run_blocking(self._reload_config)
        await run_blocking(self.queue.prune)
        self._queued = await run_blocking(self.queue.count_queued)
        self._worker = self.tasks.spawn(self.uploader.run(), name="dataspace-uploader")

    async def close(self) -> None:
        self._unsubscribe()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
        if self.connector is not None:
            await run_blocking(self.connector.close)
        await run_blocking(self.queue.close)

    # -- figures (for metrics; memory or one quick query) -----------------------------

    @property
    def counts(self) -> UploadCounts:
        """Uploads, bytes uploaded and failed attempts since the start."""
        return self.uploader.counts

    def jobs_by_state(self) -> dict[JobState, int]:
        """Jobs in each state (blocking: one SQLite query)."""
        return self.queue.count_by_state()

    # -- events and state ---------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, MeasurementFileFinished):
            if self.enabled and self.connection is not None and self.connection.auto_upload:
                self.tasks.spawn(self._auto_upload(event.path), name="dataspace-auto-upload")
        elif isinstance(event, ConfigChanged) and event.filename == DATASPACE.filename:
            self.uploader.wake.set()

    async def _auto_upload(self, path: Path) -> None:
        if path.parent.resolve() != self.measurements.resolve():
            logger.warning("Not uploading %s: not in the measurement folder", path)
            return
        job = await run_blocking(self.queue.enqueue, path.name)
        logger.info("Queued %s for automatic upload (job %d)", path.name, job.id)
        await self.after_queue_change()

    def publish(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        self.events.publish(CloudChanged())

    def publish_from_thread(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.publish)

    def cloud_state(self) -> CloudState:
        """The state for ``/state`` (memory only: never blocks)."""
        current = self.uploader.current
        connection = self.connection
        return CloudState(
            enabled=self.enabled,
            healthy=self.healthy,
            manage_url=self.connector.manage_url if self.connector is not None else None,
            reason=self.reason,
            connector=connection.connector if connection is not None else None,
            auto_upload=bool(connection.auto_upload) if connection is not None else False,
            queued=self._queued,
            uploading=UploadProgress(name=current.name, bytes_sent=current.sent, size=current.size)
            if current is not None
            else None,
        )

    def set_health(self, healthy: bool, reason: str | None) -> None:
        changed = (healthy, reason) != (self.healthy, self.reason)
        self.healthy, self.reason = healthy, reason
        if changed:
            if healthy:
                logger.info("Dataspace connection is healthy")
            elif reason == NOT_CONNECTED:
                logger.debug("Dataspace: %s", reason)
            else:
                logger.warning("Dataspace not available: %s", reason)
            self.publish_from_thread()

    async def after_queue_change(self) -> None:
        self._queued = await run_blocking(self.queue.count_queued)
        self.uploader.wake.set()
        self.publish()

    # -- configuration ------------------------------------------------------------------

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.config_path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    async def reload_if_changed(self) -> None:
        """Load dataspace.yaml again if it changed on disk. A caller that comes
        while another one reloads waits for that reload."""
        if await run_blocking(self._reload_if_changed):
            self.publish()

    def _reload_if_changed(self) -> bool:
        with self._config_lock:
            if self._stamp() == self._config_stamp:
                return False
            self._load_config()
            return True

    def _reload_config(self) -> None:
        with self._config_lock:
            self._load_config()

    def _load_config(self) -> None:
        """Read dataspace.yaml and build the connector (no network here; the
        caller holds the lock). Readers see the old state or the new one."""
        self._config_stamp = self._stamp()
        enabled, reason = False, None
        connection: ConnectionSettings | None = None
        connector: Connector | None = None
        try:
            document = parse_yaml(decode_yaml_bytes(self.config_path.read_bytes()))
            validate_document(DATASPACE, document)
        except FileNotFoundError:
            reason = "dataspace.yaml does not exist."
        except (OSError, YamlSyntaxError) as error:
            reason = f"dataspace.yaml cannot be read: {error}"
        except ConfigSchemaError as error:
            data = document.data.get("connection") if isinstance(document.data, dict) else None
            enabled = isinstance(data, dict) and data.get("enabled") is True
            reason = f"dataspace.yaml is not valid: {error.detail}"
        else:
            connection = enabled_connection(document.data)
            enabled = connection is not None
        if connection is not None:
            options = ConnectorOptions(
                connect_timeout=self.options.connect_timeout,
                read_timeout=self.options.read_timeout,
                part_size=self.options.part_size,
            )
            try:
                connector = self.connector_factory(connection, options)
            except DataspaceError as error:
                reason = error.detail
            else:
                reason = NOT_CONNECTED
        old = self.connector
        self.listing.clear()
        self.uploader.reset_probe()
        self.enabled, self.connection, self.connector = enabled, connection, connector
        if old is not None:
            old.close()
        self.set_health(False, reason)
        if connection is None and reason is None:
            logger.info("Dataspace disabled in dataspace.yaml")
        elif connection is not None and connector is not None:
            logger.info("Dataspace configured: %s connector", connection.connector)

    async def _require_connector(self) -> Connector:
        # A dataspace.yaml just stored is used at once, not at the uploader's next round.
        await self.reload_if_changed()
        if self.connector is None:
            if self.enabled:
                raise DataspaceMisconfiguredError(self.reason or None)
            raise DataspaceDisabledError()
        return self.connector

    # -- connection and listing ---------------------------------------------------------

    def check_connection(self) -> None:
        """Authenticate and refresh the listing; updates the health. Cleans up
        what interrupted uploads left behind (once per connector).

        :raises DataspaceError:"""
        connector = self.connector
        if connector is None:
            raise DataspaceDisabledError()
        try:
            connector.authenticate()
            self.listing.refresh(connector, lambda: connector is self.connector)
        except DataspaceError as error:
            self.set_health(False, error.detail)
            raise
        self.set_health(True, None)
        if self._cleaned is not connector:
            self._cleaned = connector
            self._clean_up(connector)

    def _clean_up(self, connector: Connector) -> None:
        for job in self.queue.open_multipart():
            assert job.multipart_id is not None
            try:
                connector.abort_multipart(job.name, job.multipart_id)
            except DataspaceError as error:
                logger.warning("Could not abort the upload of %s: %s", job.name, error.detail)
                continue
            self.queue.set_multipart(job.id, None)
        try:
            connector.abort_stale_multipart(self.options.stale_multipart_age)
        except DataspaceError as error:
            logger.warning("Could not clean up abandoned uploads: %s", error.detail)

    async def authenticate(self) -> CloudState:
        """Re-read dataspace.yaml, log in again and refresh the listing.

        :raises DataspaceError: (502/504) with what went wrong."""
        await self.reload_if_changed()
        if self.connector is not None:
            try:
                await run_blocking(self.check_connection)
            finally:
                self.publish()
            await run_blocking(self.queue.wake_all)
        self.uploader.wake.set()
        self.publish()
        return self.cloud_state()

    async def list_remote(self) -> list[RemoteFile]:
        """Every measurement file in the dataspace (all pages)."""
        connector = await self._require_connector()

        def listing() -> list[RemoteFile]:
            try:
                objects = self.listing.refresh(connector, lambda: connector is self.connector)
            except (DataspaceUnreachableError, DataspaceTimeoutError) as error:
                self.set_health(False, error.detail)
                raise
            return [RemoteFile.from_remote(item) for item in sorted(objects, key=_name_and_id)]

        return await run_blocking(listing)

    # -- queue operations ---------------------------------------------------------------

    async def upload(
        self, path: Path, remote_id: int | None = None, update: bool = False
    ) -> UploadJob:
        """Queue the upload of a measurement file (``update``: replace the remote object)."""
        connector = await self._require_connector()
        if update and connector.kind == "trident" and remote_id is None:
            raise FileIdRequiredError()
        if not update:
            remote_id = self._only_live_id(path.name)
        job = await run_blocking(self.queue.enqueue, path.name, remote_id)
        logger.info("Queued %s for upload (job %d)", path.name, job.id)
        await self.after_queue_change()
        return self._job_view(job)

    def _only_live_id(self, name: str) -> int | None:
        """The id of the one live object named ``name`` (an upload replaces it
        rather than adding a second object of that name)."""
        objects = (self.listing.by_name or {}).get(name, [])
        return objects[0].id if len(objects) == 1 else None

    async def wait_for_job(self, job_id: int, timeout: float) -> UploadJob:
        """The job once it is finished, or as it is after ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    job = await self.job(job_id)
                    if job.state in FINISHED_STATES:
                        return job
                    await changed.wait()
        return await self.job(job_id)

    async def jobs(self) -> list[UploadJob]:
        jobs = await run_blocking(self.queue.jobs)
        return [self._job_view(job) for job in jobs]

    def _job_view(self, job: Job) -> UploadJob:
        current = self.uploader.current
        if current is not None and current.job_id == job.id and job.state is JobState.UPLOADING:
            return UploadJob.from_job(job, current.sent)
        return UploadJob.from_job(job)

    async def job(self, job_id: int) -> UploadJob:
        job = await run_blocking(self.queue.get, job_id)
        if job is None:
            raise JobNotFoundError()
        return self._job_view(job)

    async def retry(self, job_id: int) -> UploadJob:
        if not await run_blocking(self.queue.retry, job_id):
            await self.job(job_id)  # 404 if unknown
            raise JobStateError("Only failed, cancelled or waiting jobs can be retried.")
        await self.after_queue_change()
        return await self.job(job_id)

    async def cancel(self, job_id: int) -> UploadJob:
        if not await run_blocking(self.queue.cancel, job_id):
            await self.job(job_id)
            raise JobStateError("Only queued or running jobs can be cancelled.")
        self.uploader.cancelled.add(job_id)
        logger.info("Cancelled upload job %d", job_id)
        await self.after_queue_change()
        return await self.job(job_id)

    # -- status of local files ----------------------------------------------------------

    def file_statuses(self, files: list[LocalFile]) -> dict[str, FileCloudDetails]:
        """The cloud status of each file (blocking; for the file listing's thread).
        A listing older than ``listing_fresh`` seconds is refreshed first (one in
        flight, waited for at most ``listing_wait`` seconds)."""
        if not self.enabled:
            return {}
        connector = self.connector
        if connector is not None and self.healthy:
            self.listing.refresh_if_stale(
                connector,
                lambda: connector is self.connector,
                self.options.listing_fresh,
                self.options.listing_wait,
            )
        return file_statuses(
            files,
            self.queue,
            self.listing.by_name,
            self.uploader.running,
            cached_checksum(self.queue, self.measurements, connector),
        )


def _name_and_id(remote: object) -> tuple[str, int]:
    name = getattr(remote, "name", "")
    identifier = getattr(remote, "id", None)
    return name, identifier if isinstance(identifier, int) else 0
