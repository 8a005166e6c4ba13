"""The uploader: one background task that runs due upload jobs one at a time,
and the policy for failed attempts.

* Outages (network, timeout, 5xx, the file changing during the upload) are
  retried with exponential backoff for as long as they last; credentials that
  stop working make the job wait until the dataspace is healthy again.
* Refusals (4xx) and unreadable files are final at once: the job is ``failed``.
* A checksum mismatch is tried ``max_attempts`` times.

While the dataspace is unhealthy no job is tried; the uploader probes it with
backoff and carries on by itself when it is back. Network, HDF5, file and
database work runs in threads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from icoapi.core.tasks import run_blocking
from icoapi.dataspace.connectors.base import Connector, Upload, UploadResult
from icoapi.dataspace.errors import (
    DataspaceAuthError,
    DataspaceError,
    DataspaceRefusedError,
    DataspaceTimeoutError,
    DataspaceUnreachableError,
    FileChangedError,
    UnreadableFileError,
)
from icoapi.dataspace.metadata import upload_metadata
from icoapi.dataspace.options import DataspaceOptions
from icoapi.dataspace.queue import Job, UploadQueue
from icoapi.dataspace.statuses import RemoteListing, Running
from icoapi.hdf5.validation import FileVerdicts

logger = logging.getLogger(__name__)

FILE_MISSING_STATUS = 404


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


class UploaderHost(Protocol):
    """What the uploader needs of the dataspace service."""

    options: DataspaceOptions
    queue: UploadQueue
    listing: RemoteListing
    measurements: Path
    verdicts: FileVerdicts
    connector: Connector | None
    healthy: bool

    async def reload_if_changed(self) -> None: ...

    def check_connection(self) -> None: ...

    def set_health(self, healthy: bool, reason: str | None) -> None: ...

    def publish(self) -> None: ...

    def publish_from_thread(self) -> None: ...

    async def after_queue_change(self) -> None: ...


@dataclass
class UploadCounts:
    """Totals since the start (for metrics)."""

    uploads: int = 0
    bytes_uploaded: int = 0
    failed_attempts: int = 0


class Uploader:
    def __init__(self, host: UploaderHost) -> None:
        self.host = host
        self.options = host.options
        self.queue = host.queue
        self.current: CurrentUpload | None = None
        self.cancelled: set[int] = set()
        self.counts = UploadCounts()
        self.wake = asyncio.Event()
        self._health_failures = 0
        self._next_probe = 0.0
        self._last_push = 0.0
        self._last_db_progress = 0.0
        self._lock = threading.Lock()

    @property
    def running(self) -> Running | None:
        current = self.current
        return None if current is None else Running(current.job_id, current.sent)

    def reset_probe(self) -> None:
        """A new connector: probe it at once."""
        self._health_failures = 0
        self._next_probe = 0.0

    async def run(self) -> None:
        while True:
            self.wake.clear()
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
                        await self.wake.wait()

    async def _step(self) -> float | None:
        """One round of the uploader; returns how long to wait (None: until woken)."""
        host = self.host
        await host.reload_if_changed()
        if host.connector is None:
            # Also notices a dataspace.yaml edited on disk.
            return self.options.listing_ttl
        now = time.monotonic()
        if not host.healthy:
            if now < self._next_probe:
                return self._next_probe - now
            try:
                await run_blocking(host.check_connection)
            except DataspaceError:
                self._health_failures += 1
                delay = backoff(
                    self._health_failures, self.options.backoff_initial, self.options.backoff_max
                )
                self._next_probe = time.monotonic() + delay
                host.publish()
                return delay
            self._health_failures = 0
            await run_blocking(self.queue.wake_all)
            host.publish()
        job, due = await run_blocking(self.queue.next_due, time.time())
        if job is not None:
            await self._run_job(job)
            return 0
        if host.listing.age > self.options.listing_ttl:
            connector = host.connector
            try:
                await run_blocking(
                    host.listing.refresh, connector, lambda: connector is host.connector
                )
            except DataspaceError as error:
                host.set_health(False, error.detail)
                return 0
        wait = self.options.listing_ttl
        if due is not None:
            wait = min(wait, max(0.0, due - time.time()))
        return wait

    async def _run_job(self, job: Job) -> None:
        host = self.host
        connector = host.connector
        assert connector is not None
        path = host.measurements / job.name
        try:
            stat = await run_blocking(path.stat)
        except OSError:
            detail = f"{job.name} no longer exists."
            await run_blocking(self.queue.fail, job.id, detail, FILE_MISSING_STATUS)
            logger.warning("Upload job %d failed: %s", job.id, detail)
            await host.after_queue_change()
            return
        if not await run_blocking(self.queue.start, job.id, stat.st_size):
            return  # cancelled meanwhile
        self.current = CurrentUpload(job.id, job.name, stat.st_size)
        await host.after_queue_change()
        started = time.monotonic()
        try:
            result = await run_blocking(
                self._upload_file, connector, job, path, stat.st_size, stat.st_mtime_ns
            )
        except UploadCancelledError:
            logger.info("Upload of %s cancelled", job.name)
        except DataspaceError as error:
            self.counts.failed_attempts += 1
            await self._job_failed(job, error)
        except Exception as error:
            self.counts.failed_attempts += 1
            logger.exception("Upload of %s failed unexpectedly", job.name)
            await run_blocking(self.queue.fail, job.id, f"{type(error).__name__}: {error}", 500)
        else:
            elapsed = max(time.monotonic() - started, 1e-6)
            await run_blocking(self.queue.finish, job.id, result.remote.id)
            self.counts.uploads += 1
            self.counts.bytes_uploaded += stat.st_size
            if result.listing is not None and connector is host.connector:
                host.listing.store(result.listing)
            else:
                host.listing.store_one(result.remote)
            logger.info(
                "Uploaded %s (%d bytes, %.1f MB/s, checksum verified)",
                job.name,
                stat.st_size,
                stat.st_size / elapsed / 1e6,
            )
        finally:
            self.current = None
            self.cancelled.discard(job.id)
            await host.after_queue_change()

    async def _job_failed(self, job: Job, error: DataspaceError) -> None:
        attempts = job.attempts + 1
        status = error.status_code
        if isinstance(error, FileChangedError):
            if attempts < self.options.max_changed_attempts:
                logger.info("%s changed during its upload; uploading it again", job.name)
                await run_blocking(self.queue.retry_later, job.id, error.detail, status, 0.0)
                return
        elif isinstance(error, DataspaceRefusedError | UnreadableFileError):
            pass  # final: trying again gets the same answer
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
            await run_blocking(self.queue.retry_later, job.id, error.detail, status, delay)
            if isinstance(
                error, DataspaceUnreachableError | DataspaceTimeoutError | DataspaceAuthError
            ):
                self._health_failures = 1
                self._next_probe = time.monotonic() + delay
                self.host.set_health(False, error.detail)
            return
        elif attempts < self.options.max_attempts:
            delay = backoff(attempts, self.options.backoff_initial, self.options.backoff_max)
            logger.warning(
                "Upload of %s failed its check (attempt %d of %d), retrying in %.0f s: %s",
                job.name,
                attempts,
                self.options.max_attempts,
                delay,
                error.detail,
            )
            await run_blocking(self.queue.retry_later, job.id, error.detail, status, delay)
            return
        logger.error("Upload of %s failed (attempt %d): %s", job.name, attempts, error.detail)
        await run_blocking(self.queue.fail, job.id, error.detail, status)

    def _upload_file(
        self, connector: Connector, job: Job, path: Path, size: int, mtime_ns: int
    ) -> UploadResult:
        """Blocking: send the file, check nothing changed, remember what was sent."""
        metadata = upload_metadata(path, self.host.verdicts)
        current = self.current

        def progress(sent: int) -> None:
            if job.id in self.cancelled:
                raise UploadCancelledError()
            if current is not None:
                current.sent = sent
            now = time.monotonic()
            if now - self._last_db_progress >= self.options.progress_db_interval:
                self._last_db_progress = now
                self.queue.progress(job.id, sent)
            if now - self._last_push >= self.options.progress_interval:
                self._last_push = now
                self.host.publish_from_thread()

        logger.debug("Uploading %s (job %d, %d bytes)", job.name, job.id, size)
        upload = Upload(
            path=path,
            name=job.name,
            size=size,
            metadata=metadata,
            remote_id=job.remote_id,
            progress=progress,
            remote_created=lambda remote_id: self.queue.set_remote_id(job.id, remote_id),
            multipart_started=lambda upload_id: self.queue.set_multipart(job.id, upload_id),
        )
        result = connector.upload(upload)
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (size, mtime_ns):
            raise FileChangedError(f"{job.name} changed during the upload.")
        self.queue.record_upload(job.name, size, mtime_ns, result.etag)
        scheme = connector.checksum_scheme(result.etag, size)
        self.queue.store_etag(job.name, size, mtime_ns, scheme, result.etag)
        return result
