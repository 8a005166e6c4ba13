"""``DataspaceService``: the dataspace connection, the upload queue and the
cloud status of measurement files.

One background task (the uploader) owns the uploads: it loads
``dataspace.yaml``, checks the connection, and runs due jobs one at a time in a
worker thread. Failures that may pass (network, timeout, 5xx, the file changing
during the upload) are retried with exponential backoff for as long as it takes;
refusals (credentials, 4xx, checksum mismatch) give up after a few attempts and
leave a ``failed`` job that can be retried. While the dataspace is unhealthy no
job is tried; the uploader probes it with backoff and carries on by itself when
it is back. Nothing here blocks the event loop: network, HDF5, file and
database work runs in threads, and the state only reads memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tables

from icoapi.configuration.errors import ConfigSchemaError
from icoapi.configuration.schemas import DataspaceBody, EnabledConnection, S3Connection
from icoapi.configuration.service import DATASPACE, validate_document
from icoapi.core.documents import YamlSyntaxError, decode_yaml_bytes, parse_yaml
from icoapi.core.events import CloudChanged, Event, EventBus, MeasurementFileFinished
from icoapi.core.paths import AppPaths
from icoapi.core.tasks import TaskRegistry, run_blocking
from icoapi.dataspace.connectors import (
    PART_SIZE,
    Connector,
    RemoteObject,
    S3Connector,
    TridentConnector,
    UploadResult,
    etag_part_size,
    file_etag,
)
from icoapi.dataspace.errors import (
    DataspaceAuthError,
    DataspaceDisabledError,
    DataspaceError,
    DataspaceMisconfiguredError,
    DataspaceTimeoutError,
    DataspaceUnreachableError,
    FileChangedError,
    FileIdRequiredError,
    JobNotFoundError,
    JobStateError,
    UnreadableFileError,
)
from icoapi.dataspace.queue import FINISHED_STATES, Job, UploadQueue
from icoapi.dataspace.schemas import RemoteFile, UploadJob
from icoapi.files.schemas import FileCloudDetails
from icoapi.hdf5 import metadata as metadata_io
from icoapi.hdf5.layout import HDF5_LOCK
from icoapi.state.schemas import CloudState, UploadProgress

logger = logging.getLogger(__name__)

NOT_CONNECTED = "Not connected yet."
LocalFile = tuple[str, int, int]
"""A measurement file as the listing sees it: name, size, mtime in ns."""


@dataclass(frozen=True)
class DataspaceOptions:
    """Limits of the dataspace service (tests shorten the delays)."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    part_size: int = PART_SIZE
    backoff_initial: float = 2.0
    backoff_max: float = 300.0
    # Attempts for refusals (bad credentials, 4xx, checksum mismatch) before a
    # job fails; outages are retried without limit.
    max_attempts: int = 5
    # A file that keeps changing during its upload is given up after this many tries.
    max_changed_attempts: int = 10
    listing_ttl: float = 60.0
    progress_interval: float = 0.25
    progress_db_interval: float = 1.0


class UploadCancelledError(Exception):
    """The job was cancelled while its file was being sent."""


@dataclass
class CurrentUpload:
    job_id: int
    name: str
    size: int
    sent: int = 0


def backoff(attempt: int, initial: float, maximum: float) -> float:
    return float(min(maximum, initial * 2 ** max(0, attempt - 1)))


def upload_metadata(path: Path) -> dict[str, Any]:
    """The acceleration node info sent with a file (interface §8.2): all
    attributes, JSON text parsed, each picture parameter replaced by its count.

    :raises DataspaceError: (not transient) the file is not a readable HDF5 file."""
    with HDF5_LOCK:
        try:
            h5 = tables.open_file(str(path), "r")
        except Exception as error:
            error_type = type(error).__name__
            detail = f"{path.name} is not a readable HDF5 file ({error_type})."
            raise UnreadableFileError(detail) from error
        try:
            if "/acceleration" not in h5:
                attributes: dict[str, Any] = {}
            else:
                table = h5.get_node("/acceleration")
                attributes = {
                    key: _parse_json(value)
                    for key, value in metadata_io.node_attributes(table).items()
                }
            # Metadata too large for an attribute is stored as an array of its own.
            for prefix in ("pre", "post"):
                text = metadata_io.read_metadata(h5, prefix)
                if text is not None:
                    attributes[f"{prefix}_metadata"] = _parse_json(text)
            for prefix, by_key in metadata_io.read_pictures(h5).items():
                meta = attributes.get(f"{prefix}_metadata")
                if isinstance(meta, dict) and isinstance(meta.get("parameters"), dict):
                    for key, pictures in by_key.items():
                        meta["parameters"][key] = len(pictures)
        finally:
            h5.close()
    return {
        "name": "acceleration",
        "type": "Table",
        "path": "/acceleration",
        "attributes": attributes,
    }


def _parse_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


# The HTTP libraries log full URLs at DEBUG, and presigned URLs carry signatures.
QUIET_LIBRARIES = ("urllib3", "botocore", "boto3", "s3transfer")


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
        connector_factory: Callable[[EnabledConnection | S3Connection], Connector] | None = None,
    ) -> None:
        quiet_http_libraries()
        self.options = options or DataspaceOptions()
        self.config_path = paths.config / DATASPACE.filename
        self.measurements = paths.measurements
        self.events = events
        self.tasks = tasks
        self.queue = UploadQueue(paths.root / "dataspace" / "uploads.sqlite3")
        self.connector_factory = connector_factory or self._make_connector
        self.connection: EnabledConnection | S3Connection | None = None
        self.connector: Connector | None = None
        self.enabled = False
        self.healthy = False
        self.reason: str | None = None
        self._config_stamp: tuple[int, int] | None = None
        self._config_lock = threading.Lock()
        self._remote: dict[str, list[RemoteObject]] | None = None
        self._remote_time = 0.0
        self._current: CurrentUpload | None = None
        self._cancelled: set[int] = set()
        self._queued = 0
        # Over the service's life (metrics): bytes of files uploaded, failed attempts.
        self.uploaded_bytes = 0
        self.failed_attempts = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._health_failures = 0
        self._next_probe = 0.0
        self._last_push = 0.0
        self._last_db_progress = 0.0
        self._publishing = False
        self._worker: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._unsubscribe = events.subscribe(self._on_event)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Load the configuration and start the uploader (which connects)."""
        self._loop = asyncio.get_running_loop()
        await run_blocking(self._reload_config)
        self._queued = await run_blocking(self.queue.count_queued)
        self._worker = self.tasks.spawn(self._run(), name="dataspace-uploader")

    async def close(self) -> None:
        self._unsubscribe()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
        if self.connector is not None:
            await run_blocking(self.connector.close)
        await run_blocking(self.queue.close)

    def _make_connector(self, connection: EnabledConnection | S3Connection) -> Connector:
        if isinstance(connection, S3Connection):
            return S3Connector(
                connection,
                connect_timeout=self.options.connect_timeout,
                read_timeout=self.options.read_timeout,
                part_size=self.options.part_size,
            )
        return TridentConnector(
            connection,
            connect_timeout=self.options.connect_timeout,
            read_timeout=self.options.read_timeout,
        )

    # -- events and state ---------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, MeasurementFileFinished):
            if self.enabled and self.connection is not None and self.connection.auto_upload:
                self.tasks.spawn(self._auto_upload(event.path), name="dataspace-auto-upload")
        elif isinstance(event, CloudChanged) and not self._publishing:
            # Perhaps a new dataspace.yaml: the uploader checks.
            self._wake.set()

    async def _auto_upload(self, path: Path) -> None:
        if path.parent.resolve() != self.measurements.resolve():
            logger.warning("Not uploading %s: not in the measurement folder", path)
            return
        job = await run_blocking(self.queue.enqueue, path.name)
        logger.info("Queued %s for automatic upload (job %d)", path.name, job.id)
        await self._after_queue_change()

    def _publish(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        self._publishing = True
        try:
            self.events.publish(CloudChanged())
        finally:
            self._publishing = False

    def _publish_from_thread(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._publish)

    def cloud_state(self) -> CloudState:
        """The state for ``/state`` (memory only: never blocks)."""
        current = self._current
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

    def _set_health(self, healthy: bool, reason: str | None) -> None:
        changed = (healthy, reason) != (self.healthy, self.reason)
        self.healthy, self.reason = healthy, reason
        if changed:
            if healthy:
                logger.info("Dataspace connection is healthy")
            elif reason == NOT_CONNECTED:
                logger.debug("Dataspace: %s", reason)
            else:
                logger.warning("Dataspace not available: %s", reason)
            self._publish_from_thread()

    async def _after_queue_change(self) -> None:
        self._queued = await run_blocking(self.queue.count_queued)
        self._wake.set()
        self._publish()

    # -- configuration ------------------------------------------------------------------

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.config_path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _config_changed(self) -> bool:
        return self._stamp() != self._config_stamp

    def _reload_config(self) -> None:
        """Read dataspace.yaml and build the connector (no network here)."""
        with self._config_lock:
            self._config_stamp = self._stamp()
            old = self.connector
            self.connector = None
            self.connection = None
            self._remote = None
            self._health_failures = 0
            self._next_probe = 0.0
            if old is not None:
                old.close()
            try:
                raw = self.config_path.read_bytes()
                document = parse_yaml(decode_yaml_bytes(raw))
                validate_document(DATASPACE, document)
            except FileNotFoundError:
                self.enabled = False
                self._set_health(False, "dataspace.yaml does not exist.")
                return
            except (OSError, YamlSyntaxError) as error:
                self.enabled = False
                self._set_health(False, f"dataspace.yaml cannot be read: {error}")
                return
            except ConfigSchemaError as error:
                connection = (
                    document.data.get("connection") if isinstance(document.data, dict) else None
                )
                self.enabled = isinstance(connection, dict) and connection.get("enabled") is True
                self._set_health(False, f"dataspace.yaml is not valid: {error.detail}")
                return
            connection = DataspaceBody.model_validate(document.data).connection
            if not isinstance(connection, EnabledConnection | S3Connection):
                self.enabled = False
                self._set_health(False, None)
                logger.info("Dataspace disabled in dataspace.yaml")
                return
            self.enabled = True
            self.connection = connection
            try:
                self.connector = self.connector_factory(connection)
            except DataspaceError as error:
                self._set_health(False, error.detail)
                return
            self._set_health(False, NOT_CONNECTED)
            logger.info("Dataspace configured: %s connector", connection.connector)

    def _require_connector(self) -> Connector:
        if self.connector is None:
            if self.enabled:
                raise DataspaceMisconfiguredError(self.reason or None)
            raise DataspaceDisabledError()
        return self.connector

    # -- connection and listing ---------------------------------------------------------

    def _check_connection(self) -> None:
        """Authenticate and refresh the listing; updates the health.

        :raises DataspaceError:"""
        connector = self._require_connector()
        try:
            connector.authenticate()
            self._refresh_remote(connector)
        except DataspaceError as error:
            self._set_health(False, error.detail)
            raise
        self._health_failures = 0
        self._set_health(True, None)

    def _refresh_remote(self, connector: Connector) -> list[RemoteObject]:
        objects = connector.list_objects()
        remote: dict[str, list[RemoteObject]] = {}
        for item in objects:
            if item.status != "deleted":
                remote.setdefault(item.name, []).append(item)
        if connector is self.connector:
            self._remote = remote
            self._remote_time = time.monotonic()
        return objects

    async def authenticate(self) -> CloudState:
        """Re-read dataspace.yaml, log in again and refresh the listing.

        :raises DataspaceError: (502/504) with what went wrong."""
        if self.connector is None or await run_blocking(self._config_changed):
            # Otherwise keep the connector: an upload may be using it.
            await run_blocking(self._reload_config)
        if self.connector is not None:
            try:
                await run_blocking(self._check_connection)
            finally:
                self._publish()
            await run_blocking(self.queue.wake_all)
        self._wake.set()
        self._publish()
        return self.cloud_state()

    async def list_remote(self) -> list[RemoteFile]:
        """Every measurement file in the dataspace (all pages)."""
        connector = self._require_connector()

        def listing() -> list[RemoteObject]:
            try:
                objects = self._refresh_remote(connector)
            except (DataspaceUnreachableError, DataspaceTimeoutError) as error:
                self._set_health(False, error.detail)
                raise
            return objects

        objects = await run_blocking(listing)
        return [RemoteFile.from_remote(item) for item in sorted(objects, key=lambda o: o.name)]

    # -- queue operations ---------------------------------------------------------------

    async def upload(
        self, path: Path, remote_id: int | None = None, update: bool = False
    ) -> UploadJob:
        """Queue the upload of a measurement file (``update``: replace the remote object)."""
        connector = self._require_connector()
        if update and connector.kind == "trident" and remote_id is None:
            raise FileIdRequiredError()
        job = await run_blocking(self.queue.enqueue, path.name, remote_id if update else None)
        logger.info("Queued %s for upload (job %d)", path.name, job.id)
        await self._after_queue_change()
        return UploadJob.from_job(job)

    async def jobs(self) -> list[UploadJob]:
        jobs = await run_blocking(self.queue.jobs)
        return [self._job_view(job) for job in jobs]

    def _job_view(self, job: Job) -> UploadJob:
        current = self._current
        if current is not None and current.job_id == job.id and job.state == "uploading":
            return UploadJob.from_job(job, current.sent)
        return UploadJob.from_job(job)

    async def job(self, job_id: int) -> UploadJob:
        job = await run_blocking(self.queue.get, job_id)
        if job is None:
            raise JobNotFoundError()
        return self._job_view(job)

    async def wait_for_job(
        self, job_id: int, states: tuple[str, ...] = FINISHED_STATES, timeout: float = 60
    ) -> UploadJob:
        """The job once it is in one of ``states``.

        :raises TimeoutError: not within ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                job = await self.job(job_id)
                if job.state in states:
                    return job
                await changed.wait()

    async def retry(self, job_id: int) -> UploadJob:
        if not await run_blocking(self.queue.retry, job_id):
            await self.job(job_id)  # 404 if unknown
            raise JobStateError("Only failed, cancelled or waiting jobs can be retried.")
        await self._after_queue_change()
        return await self.job(job_id)

    async def cancel(self, job_id: int) -> UploadJob:
        if not await run_blocking(self.queue.cancel, job_id):
            await self.job(job_id)
            raise JobStateError("Only queued or running jobs can be cancelled.")
        self._cancelled.add(job_id)
        logger.info("Cancelled upload job %d", job_id)
        await self._after_queue_change()
        return await self.job(job_id)

    # -- the uploader -------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                timeout = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Dataspace uploader step failed")
                timeout = self.options.backoff_max
            if timeout is None or timeout > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()

    async def _step(self) -> float | None:
        """One round of the uploader; returns how long to wait (None: until woken)."""
        if await run_blocking(self._config_changed):
            await run_blocking(self._reload_config)
            self._publish()
        if self.connector is None:
            # Also notices a dataspace.yaml edited on disk (uploads announce themselves).
            return self.options.listing_ttl
        now = time.monotonic()
        if not self.healthy:
            if now < self._next_probe:
                return self._next_probe - now
            try:
                await run_blocking(self._check_connection)
            except DataspaceError:
                self._health_failures += 1
                delay = backoff(
                    self._health_failures, self.options.backoff_initial, self.options.backoff_max
                )
                self._next_probe = time.monotonic() + delay
                self._publish()
                return delay
            await run_blocking(self.queue.wake_all)
            self._publish()
        job, due = await run_blocking(self.queue.next_due, time.time())
        if job is not None:
            await self._run_job(job)
            return 0
        if time.monotonic() - self._remote_time > self.options.listing_ttl:
            connector = self.connector
            try:
                await run_blocking(self._refresh_remote, connector)
            except DataspaceError as error:
                self._set_health(False, error.detail)
                return 0
        wait = self.options.listing_ttl
        if due is not None:
            wait = min(wait, max(0.0, due - time.time()))
        return wait

    async def _run_job(self, job: Job) -> None:
        connector = self.connector
        assert connector is not None
        path = self.measurements / job.name
        try:
            stat = await run_blocking(path.stat)
        except OSError:
            self.failed_attempts += 1
            await run_blocking(self.queue.fail, job.id, f"{job.name} no longer exists.")
            logger.warning("Upload job %d failed: %s no longer exists", job.id, job.name)
            await self._after_queue_change()
            return
        if not await run_blocking(self.queue.start, job.id, stat.st_size):
            return  # cancelled meanwhile
        self._current = CurrentUpload(job.id, job.name, stat.st_size)
        self._queued = max(0, self._queued - 1)
        self._publish()
        started = time.monotonic()
        try:
            result = await run_blocking(
                self._upload_file, connector, job, path, stat.st_size, stat.st_mtime_ns
            )
        except UploadCancelledError:
            logger.info("Upload of %s cancelled", job.name)
        except DataspaceError as error:
            self.failed_attempts += 1
            await self._job_failed(job, error)
        except Exception as error:
            self.failed_attempts += 1
            logger.exception("Upload of %s failed unexpectedly", job.name)
            await run_blocking(self.queue.fail, job.id, f"{type(error).__name__}: {error}")
        else:
            self.uploaded_bytes += stat.st_size
            elapsed = max(time.monotonic() - started, 1e-6)
            await run_blocking(self.queue.finish, job.id, result.remote.id)
            if self._remote is not None:
                self._remote[job.name] = [result.remote]
            logger.info(
                "Uploaded %s (%d bytes, %.1f MB/s, checksum verified)",
                job.name,
                stat.st_size,
                stat.st_size / elapsed / 1e6,
            )
        finally:
            self._current = None
            self._cancelled.discard(job.id)
            self._queued = await run_blocking(self.queue.count_queued)
            self._publish()

    async def _job_failed(self, job: Job, error: DataspaceError) -> None:
        attempts = job.attempts + 1
        if isinstance(error, FileChangedError):
            if attempts < self.options.max_changed_attempts:
                logger.info("%s changed during its upload; uploading it again", job.name)
                await run_blocking(self.queue.retry_later, job.id, error.detail, 0.0)
                return
        elif error.transient or isinstance(error, DataspaceAuthError):
            # An outage, or credentials that stopped working: the job waits until
            # the dataspace is healthy again (a fixed dataspace.yaml, a login).
            delay = backoff(attempts, self.options.backoff_initial, self.options.backoff_max)
            logger.warning(
                "Upload of %s failed (attempt %d), retrying in %.0f s: %s",
                job.name,
                attempts,
                delay,
                error.detail,
            )
            await run_blocking(self.queue.retry_later, job.id, error.detail, delay)
            if isinstance(
                error, DataspaceUnreachableError | DataspaceTimeoutError | DataspaceAuthError
            ):
                self._health_failures = 1
                self._next_probe = time.monotonic() + delay
                self._set_health(False, error.detail)
            return
        elif attempts < self.options.max_attempts:
            delay = backoff(attempts, self.options.backoff_initial, self.options.backoff_max)
            logger.warning(
                "Upload of %s refused (attempt %d of %d), retrying in %.0f s: %s",
                job.name,
                attempts,
                self.options.max_attempts,
                delay,
                error.detail,
            )
            await run_blocking(self.queue.retry_later, job.id, error.detail, delay)
            return
        logger.error("Upload of %s failed after %d attempts: %s", job.name, attempts, error.detail)
        await run_blocking(self.queue.fail, job.id, error.detail)

    def _upload_file(
        self, connector: Connector, job: Job, path: Path, size: int, mtime_ns: int
    ) -> UploadResult:
        """Blocking: send the file, check nothing changed, remember what was sent."""
        metadata = upload_metadata(path)
        current = self._current

        def progress(sent: int) -> None:
            if job.id in self._cancelled:
                raise UploadCancelledError()
            if current is not None:
                current.sent = sent
            now = time.monotonic()
            if now - self._last_db_progress >= self.options.progress_db_interval:
                self._last_db_progress = now
                self.queue.progress(job.id, sent)
            if now - self._last_push >= self.options.progress_interval:
                self._last_push = now
                self._publish_from_thread()

        logger.debug("Uploading %s (job %d, %d bytes)", job.name, job.id, size)
        result = connector.upload(path, job.name, size, metadata, job.remote_id, progress)
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (size, mtime_ns):
            raise FileChangedError(f"{job.name} changed during the upload.")
        self.queue.record_upload(job.name, size, mtime_ns, result.etag)
        part_size = etag_part_size(result.etag, size, connector.part_size)
        self.queue.store_etag(job.name, size, mtime_ns, part_size, result.etag)
        return result

    # -- status of local files ----------------------------------------------------------

    def file_statuses(self, files: list[LocalFile]) -> dict[str, FileCloudDetails]:
        """The cloud status of each file (blocking; for the file listing's thread).

        Unchanged files are never hashed: what was uploaded is recorded with the
        file's size and mtime, and checksums are cached by size and mtime."""
        if not self.enabled:
            return {}
        jobs = self.queue.latest_by_name()
        uploads = self.queue.uploads()
        remote = self._remote
        current = self._current
        result = {}
        for name, size, mtime_ns in files:
            job = jobs.get(name)
            if job is not None and job.state == "uploading":
                sent = current.sent if current is not None and current.job_id == job.id else 0
                result[name] = FileCloudDetails(
                    status="uploading", id=job.remote_id, progress=sent / size if size else None
                )
                continue
            if job is not None and job.state == "queued":
                result[name] = FileCloudDetails(status="queued", detail=job.last_error)
                continue
            record = uploads.get(name)
            if (
                job is not None
                and job.state == "failed"
                and (record is None or record.uploaded < job.updated)
            ):
                result[name] = FileCloudDetails(status="error", detail=job.last_error)
                continue
            matches_upload = (
                record is not None and record.size == size and record.mtime_ns == mtime_ns
            )
            if remote is None:
                # Not listed yet: what this service uploaded is all it knows.
                if record is None:
                    result[name] = FileCloudDetails()
                else:
                    result[name] = FileCloudDetails(
                        status="up_to_date" if matches_upload else "outdated"
                    )
                continue
            objects = remote.get(name, [])
            if not objects:
                result[name] = FileCloudDetails()
                continue
            if len(objects) > 1:
                result[name] = FileCloudDetails(
                    status="error",
                    detail=f"{len(objects)} dataspace objects have this name.",
                )
                continue
            remote_object = objects[0]
            timestamp = (
                remote_object.last_modified.isoformat() if remote_object.last_modified else None
            )
            details = FileCloudDetails(id=remote_object.id, upload_timestamp=timestamp)
            if remote_object.status in ("updating", "created"):
                details.status = remote_object.status  # type: ignore[assignment]
            elif remote_object.status != "available":
                details.status = "not_uploaded"
            elif (
                matches_upload
                and record is not None
                and (remote_object.etag is None or remote_object.etag == record.etag)
            ):
                details.status = "up_to_date"
            elif remote_object.size is not None and remote_object.size != size:
                details.status = "outdated"
            elif remote_object.etag is None:
                details.status = "up_to_date" if matches_upload else "outdated"
            else:
                local = self._local_etag(name, size, mtime_ns, remote_object.etag)
                details.status = "up_to_date" if local == remote_object.etag else "outdated"
            result[name] = details
        return result

    def _local_etag(self, name: str, size: int, mtime_ns: int, remote_etag: str) -> str | None:
        connector = self.connector
        configured = connector.part_size if connector else PART_SIZE
        part_size = etag_part_size(remote_etag, size, configured)
        cached = self.queue.cached_etag(name, size, mtime_ns, part_size)
        if cached is not None:
            return cached
        try:
            etag = file_etag(self.measurements / name, size, part_size or max(size, 1))
        except OSError:
            return None
        self.queue.store_etag(name, size, mtime_ns, part_size, etag)
        return etag
