"""The cloud status of local files, and the remote listing it is computed from.

``cloud.status`` holds only the six values the web client renders
(``not_uploaded``, ``outdated``, ``updating``, ``up_to_date``, ``error``,
``created``); ``queue_state``, ``progress`` and ``detail`` say more:

* a queued or running upload shows ``updating`` (the client draws a spinner);
* a failed upload shows ``not_uploaded`` or ``outdated`` (the client offers
  Upload or Update again) with the reason in ``detail``;
* ``error`` means what it means in the reference: several live remote objects
  have the file's name.

Files are not hashed on every listing: what was uploaded is recorded with the
file's size and mtime, and checksums of other files are cached by size, mtime
and checksum scheme."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from icoapi.dataspace.connectors.base import Connector, RemoteObject
from icoapi.dataspace.connectors.checksums import file_checksum
from icoapi.dataspace.errors import DataspaceError
from icoapi.dataspace.queue import Job, JobState, UploadQueue, UploadRecord
from icoapi.files.schemas import FileCloudDetails

logger = logging.getLogger(__name__)

LocalFile = tuple[str, int, int]
"""A measurement file as the listing sees it: name, size, mtime in ns."""


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    objects: list[RemoteObject] = field(default_factory=list)
    error: BaseException | None = None


class RemoteListing:
    """The dataspace's listing as last fetched. One listing is in flight at a
    time: who asks meanwhile waits for it and gets its result."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flight: _Flight | None = None
        self._by_name: dict[str, list[RemoteObject]] | None = None
        self._time = 0.0

    @property
    def by_name(self) -> dict[str, list[RemoteObject]] | None:
        """Live objects by name; None before the first listing."""
        return self._by_name

    @property
    def age(self) -> float:
        return time.monotonic() - self._time

    def clear(self) -> None:
        self._by_name = None
        self._time = 0.0

    def store(self, objects: list[RemoteObject]) -> None:
        by_name: dict[str, list[RemoteObject]] = {}
        for item in objects:
            if item.live:
                by_name.setdefault(item.name, []).append(item)
        self._by_name = by_name
        self._time = time.monotonic()

    def store_one(self, remote: RemoteObject) -> None:
        """The object an upload just made or replaced (another listing is
        coming anyway; until then this is what is known)."""
        if self._by_name is not None:
            others = [o for o in self._by_name.get(remote.name, []) if o.id != remote.id]
            self._by_name[remote.name] = [*others, remote] if remote.id is not None else [remote]

    def _join_or_lead(self) -> tuple[_Flight, bool]:
        """The listing in flight, or a new one this caller must run (decided under
        the lock, so two callers never both start one)."""
        with self._lock:
            if self._flight is not None:
                return self._flight, False
            self._flight = _Flight()
            return self._flight, True

    def _fly(self, flight: _Flight, connector: Connector, current: Callable[[], bool]) -> None:
        """Run the listing ``flight`` leads; stores it while ``connector`` is ``current()``.

        :raises DataspaceError:"""
        try:
            flight.objects = connector.list_objects()
            if current():
                self.store(flight.objects)
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                self._flight = None
            flight.done.set()

    def refresh(self, connector: Connector, current: Callable[[], bool]) -> list[RemoteObject]:
        """Every object (deleted ones included); stores the listing while
        ``connector`` is ``current()``. Joins a listing already in flight.

        :raises DataspaceError:"""
        flight, leader = self._join_or_lead()
        if leader:
            self._fly(flight, connector, current)
        else:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
        return flight.objects

    def refresh_if_stale(
        self, connector: Connector, current: Callable[[], bool], older: float, wait: float
    ) -> None:
        """Refresh a listing older than ``older`` seconds in the background and
        wait for it up to ``wait`` seconds (blocking)."""
        if self.age <= older:
            return
        flight, leader = self._join_or_lead()
        if leader:

            def run() -> None:
                try:
                    self._fly(flight, connector, current)
                except DataspaceError as error:
                    logger.debug("Listing for the file statuses failed: %s", error.detail)

            threading.Thread(target=run, name="dataspace-listing", daemon=True).start()
        flight.done.wait(wait)


@dataclass(frozen=True)
class Running:
    """The upload in progress."""

    job_id: int
    sent: int


def file_statuses(
    files: list[LocalFile],
    queue: UploadQueue,
    remote: dict[str, list[RemoteObject]] | None,
    running: Running | None,
    checksum: Callable[[str, int, int, str], str | None],
) -> dict[str, FileCloudDetails]:
    """The status of each file (blocking: reads the queue, may hash a file).
    ``checksum(name, size, mtime_ns, remote etag)`` gives a local file's
    checksum in the scheme of the remote one."""
    jobs = queue.latest_by_name()
    uploads = queue.uploads()
    result = {}
    for name, size, mtime_ns in files:
        job = jobs.get(name)
        if job is not None and job.state in (JobState.QUEUED, JobState.UPLOADING):
            result[name] = _in_queue(job, size, running)
            continue
        record = uploads.get(name)
        details = _compared(name, size, mtime_ns, record, remote, checksum)
        if job is not None:
            details.queue_state = job.state.value
            if job.state is JobState.FAILED and (record is None or record.uploaded < job.updated):
                details.detail = job.last_error
                if details.status not in ("up_to_date", "error", "outdated"):
                    # The client offers Upload again (an object the failed attempt
                    # left waiting for its data is reused: ``id``).
                    details.status = "not_uploaded"
        result[name] = details
    return result


def _in_queue(job: Job, size: int, running: Running | None) -> FileCloudDetails:
    if job.state is JobState.UPLOADING:
        sent = running.sent if running is not None and running.job_id == job.id else 0
        return FileCloudDetails(
            status="updating",
            id=job.remote_id,
            queue_state=job.state.value,
            progress=min(1.0, sent / size) if size else None,
        )
    return FileCloudDetails(
        status="updating", id=job.remote_id, queue_state=job.state.value, detail=job.last_error
    )


def _compared(
    name: str,
    size: int,
    mtime_ns: int,
    record: UploadRecord | None,
    remote: dict[str, list[RemoteObject]] | None,
    checksum: Callable[[str, int, int, str], str | None],
) -> FileCloudDetails:
    """The status from the local file, what was uploaded and the listing."""
    matches_upload = record is not None and record.size == size and record.mtime_ns == mtime_ns
    if remote is None:
        # Not listed yet: what this service uploaded is all it knows.
        if record is None:
            return FileCloudDetails()
        return FileCloudDetails(status="up_to_date" if matches_upload else "outdated")
    objects = remote.get(name, [])
    if not objects:
        return FileCloudDetails()
    if len(objects) > 1:
        return FileCloudDetails(
            status="error", detail=f"{len(objects)} dataspace objects have this name."
        )
    remote_object = objects[0]
    timestamp = remote_object.last_modified.isoformat() if remote_object.last_modified else None
    details = FileCloudDetails(id=remote_object.id, upload_timestamp=timestamp)
    if remote_object.status in ("updating", "created"):
        details.status = "updating" if remote_object.status == "updating" else "created"
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
        local = checksum(name, size, mtime_ns, remote_object.etag)
        details.status = "up_to_date" if local == remote_object.etag else "outdated"
    return details


def cached_checksum(
    queue: UploadQueue, folder: Path, connector: Connector | None
) -> Callable[[str, int, int, str], str | None]:
    """A local file's checksum in the scheme of a remote etag, from the cache
    or computed (and cached)."""

    def checksum(name: str, size: int, mtime_ns: int, remote_etag: str) -> str | None:
        if connector is None:
            return None
        scheme = connector.checksum_scheme(remote_etag, size)
        cached = queue.cached_etag(name, size, mtime_ns, scheme)
        if cached is not None:
            return cached
        try:
            value = file_checksum(folder / name, size, scheme)
        except OSError:
            return None
        queue.store_etag(name, size, mtime_ns, scheme, value)
        return value

    return checksum
