"""``GET /files``: the listing of the measurement folder, cheap enough for folders
of 10,000 files under load.

* The folder is scanned again only when its modification time changes (a file
  added, removed or renamed); otherwise the names of the last scan are reused.
* Each file is ``stat``-ed on every listing; what is expensive (the
  hostile-file check, the measurement's start read from the file, the entry's
  JSON) is cached per file version (size, modification and change time, inode).
* Only symbolic links are resolved (to keep links that lead out of the folder
  out of the list); a link loop or a vanished file is skipped.
* Concurrent requests share listings (:class:`SharedRound`): a request waits for
  the next listing that starts after it arrived, so it never sees an older
  state, and 20 clients cost one listing at a time, not 20 threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any

from icoapi.core.disk import disk_capacity
from icoapi.files.schemas import FileCloudDetails
from icoapi.hdf5.names import is_measurement_file_name
from icoapi.hdf5.validation import FileVerdicts

STALE_UPLOAD_SECONDS = 24 * 3600
ENTRY_CACHE_SIZE = 50_000

CloudStatusProvider = Callable[[list[tuple[str, int, int]]], dict[str, FileCloudDetails]]
"""Cloud status by file name for (name, size, mtime in ns) of listed files; blocking."""

_NOT_UPLOADED = FileCloudDetails().model_dump_json()


@dataclass
class _Entry:
    created: float
    fields: str  # the entry's JSON members before "cloud"
    cloud: str = ""  # the cloud status of the last listing…
    text: str = ""  # …and the entry's JSON with it

    def json(self, cloud: str) -> str:
        if cloud != self.cloud or not self.text:
            self.cloud, self.text = cloud, f'{self.fields}, "cloud": {cloud}}}'
        return self.text


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).isoformat()


class SharedRound[T]:
    """Runs ``compute`` for callers, one run at a time; a caller joins the next run
    that starts after its call (never one already running)."""

    def __init__(self, compute: Callable[[], Awaitable[T]]) -> None:
        self._compute = compute
        self._waiting: asyncio.Future[T] | None = None
        self._running: asyncio.Task[None] | None = None

    async def get(self) -> T:
        future = self._waiting
        if future is None:
            future = self._waiting = asyncio.get_running_loop().create_future()
            if self._running is None:
                self._launch()
        return await asyncio.shield(future)

    def _launch(self) -> None:
        future, self._waiting = self._waiting, None
        assert future is not None
        self._running = asyncio.create_task(self._run(future), name="files-listing")

    async def _run(self, future: asyncio.Future[T]) -> None:
        try:
            result = await self._compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
        else:
            future.set_result(result)
        finally:
            self._running = None
            if self._waiting is not None:
                self._launch()


class FolderListing:
    """The JSON of ``GET /files`` for one measurement folder (blocking)."""

    def __init__(
        self,
        directory: Path,
        verdicts: FileVerdicts,
        files_in_use: Callable[[], set[str]],
        cloud_status: CloudStatusProvider | None,
    ) -> None:
        self.directory = directory
        self.verdicts = verdicts
        self.files_in_use = files_in_use
        self.cloud_status = cloud_status
        self._scan_key: tuple[int, int] | None = None
        self._names: list[tuple[str, bool]] = []  # (name, is a symbolic link)
        self._entries: dict[tuple[str, int, int, int, int], _Entry] = {}
        self._cloud_json: dict[tuple[Any, ...], str] = {}

    def _scan(self) -> list[tuple[str, bool]]:
        stat = os.stat(self.directory)
        key = (stat.st_mtime_ns, stat.st_ino)
        if key == self._scan_key:
            return self._names
        names = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.startswith(".upload-") and entry.name.endswith(".part"):
                    _remove_stale_upload(Path(entry.path))
                if is_measurement_file_name(entry.name):
                    names.append((entry.name, entry.is_symlink()))
        self._names, self._scan_key = names, key
        return names

    def _inside(self, name: str) -> bool:
        """Whether a symbolic link leads to a file in the folder itself."""
        try:
            target = (self.directory / name).resolve(strict=True)
            return target.parent == self.directory.resolve(strict=True)
        except (OSError, RuntimeError):  # a loop, a dangling link
            return False

    def _entry(self, name: str, stat: os.stat_result, in_use: bool) -> _Entry:
        key = (name, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        cached = self._entries.get(key)
        if cached is not None:
            return cached
        created = getattr(stat, "st_birthtime", None) or stat.st_mtime
        invalid = None
        if not in_use:  # a file being written is checked once it is complete
            verdict = self.verdicts.verdict(self.directory / name, stat)
            invalid = verdict.problem
            if verdict.summary is not None and verdict.summary.start is not None:
                created = verdict.summary.start.timestamp()
        members = {
            "name": name,
            "created": _iso(created),
            "modified": _iso(stat.st_mtime),
            "size": stat.st_size,
            "invalid": invalid,
        }
        entry = _Entry(created, json.dumps(members, ensure_ascii=False)[:-1])
        if not in_use:
            if len(self._entries) >= ENTRY_CACHE_SIZE:
                self._entries.clear()
            self._entries[key] = entry
        return entry

    def _cloud(self, details: FileCloudDetails | None) -> str:
        if details is None:
            return _NOT_UPLOADED
        key = tuple(details.__dict__.values())
        text = self._cloud_json.get(key)
        if text is None:
            if len(self._cloud_json) > ENTRY_CACHE_SIZE:
                self._cloud_json.clear()
            text = self._cloud_json[key] = details.model_dump_json()
        return text

    def render(self) -> bytes:
        """The listing as JSON (``FileListResponse``), newest first."""
        self.directory.mkdir(parents=True, exist_ok=True)
        in_use = self.files_in_use()
        listed: list[tuple[float, str, _Entry, int, int]] = []
        names = self._scan()
        folder = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name, is_link in names:
                if is_link and not self._inside(name):
                    continue
                try:
                    stat = os.stat(name, dir_fd=folder)
                except (OSError, RuntimeError):
                    continue  # vanished meanwhile, or a link loop
                if not S_ISREG(stat.st_mode):
                    continue
                entry = self._entry(name, stat, name in in_use)
                listed.append((entry.created, name, entry, stat.st_size, stat.st_mtime_ns))
        finally:
            os.close(folder)
        listed.sort(reverse=True)  # by start, then name (names are unique)
        statuses: dict[str, FileCloudDetails] = {}
        if self.cloud_status is not None and listed:
            versions = [(name, size, mtime) for _, name, _, size, mtime in listed]
            statuses = self.cloud_status(versions)
        files = ",".join(
            entry.json(self._cloud(statuses.get(name))) for _, name, entry, _, _ in listed
        )
        capacity = disk_capacity(self.directory).model_dump_json()
        directory = json.dumps(str(self.directory.resolve()), ensure_ascii=False)
        return f'{{"capacity": {capacity}, "files": [{files}], "directory": {directory}}}'.encode()


def _remove_stale_upload(path: Path) -> None:
    """Temporary upload files left behind by a killed process (older than a day)."""
    with contextlib.suppress(OSError):
        if time.time() - path.stat().st_mtime > STALE_UPLOAD_SECONDS:
            path.unlink()
