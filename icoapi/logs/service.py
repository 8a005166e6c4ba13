"""``LogService``: the service's own log files and the live log.

Log files can be large and the current one keeps growing, so nothing here reads
a whole file unless asked to: timestamps come from the head and the tail, a
"last N lines" view reads blocks backwards from the end, downloads and the ZIP
are streamed, and every read stops at the size the file had when it was opened.

A name from a request is only used after :meth:`LogService.resolve` checked it:
a plain file name of a log file whose resolved path lies in the log folder."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
import zipfile
from collections.abc import AsyncIterator, Buffer, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from icoapi.core.logging import LogFanout, LogSubscription
from icoapi.core.names import is_plain_file_name
from icoapi.core.paths import AppPaths
from icoapi.core.settings import Settings
from icoapi.core.tasks import run_blocking
from icoapi.logs.errors import (
    InvalidLogPathError,
    LogNotFoundError,
    LogReadError,
    NoLogFilesError,
)
from icoapi.logs.schemas import LogFileInfo, LogListResponse, LogView

logger = logging.getLogger(__name__)

# Log files: the current file and its rotations (``x.log``, ``x.log.3``).
LOG_FILE_PATTERN = re.compile(r"[^/\\]+\.log(?:\.\d+)?")
TEXT_TIMESTAMP = re.compile(rb"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3})")
EDGE_BYTES = 64 * 1024  # head and tail read for the timestamps
BLOCK_BYTES = 64 * 1024
MAX_VIEW_BYTES = 10 * 1024 * 1024
MAX_VIEW_LINES = 100_000


def _timestamp(line: bytes) -> str | None:
    """ISO time of a text (``2025-01-31 12:00:00,123``) or JSON log line."""
    match = TEXT_TIMESTAMP.match(line)
    if match is not None:
        try:
            moment = datetime.strptime(match[1].decode(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
        return moment.replace(microsecond=int(match[2]) * 1000).isoformat()
    if line.startswith(b"{"):
        try:
            value = json.loads(line)["timestamp"]
            return datetime.fromisoformat(value).isoformat()
        except (ValueError, KeyError, TypeError):
            return None
    return None


def _sort_key(name: str) -> tuple[str, int]:
    # Natural order: x.log, x.log.1, x.log.2, …, x.log.10.
    base, _, number = name.rpartition(".")
    return (base, int(number)) if number.isdigit() else (name, -1)


class _ChunkSink(io.RawIOBase):
    """A write-only, non-seekable target for ``zipfile`` whose output is taken
    out piece by piece (zipfile then writes data descriptors instead of seeking)."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:
        view = memoryview(data)
        self._buffer += view
        self._position += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


class LogService:
    """Lists, reads, downloads and zips the log files; feeds the live stream."""

    def __init__(self, paths: AppPaths, settings: Settings, fanout: LogFanout) -> None:
        self.directory = paths.logs
        self.log_name = paths.log_file.name
        self.max_bytes = settings.LOG_MAX_BYTES
        self.backup_count = settings.LOG_BACKUP_COUNT
        self.fanout = fanout

    def _is_log_file_name(self, name: str) -> bool:
        return name.startswith(self.log_name) or LOG_FILE_PATTERN.fullmatch(name) is not None

    def resolve(self, name: str) -> Path:
        """The path of the log file ``name``.

        :raises InvalidLogPathError: (403) not a plain file name, or the file
            resolves outside the log folder (e.g. a symlink leading elsewhere).
        :raises LogNotFoundError: (404)
        """
        if not is_plain_file_name(name):
            raise InvalidLogPathError()
        if not self._is_log_file_name(name):
            raise LogNotFoundError()
        try:
            base = self.directory.resolve(strict=True)
            resolved = (self.directory / name).resolve(strict=True)
        except FileNotFoundError as error:
            raise LogNotFoundError() from error
        except (OSError, RuntimeError) as error:  # symlink loop, permissions
            raise InvalidLogPathError() from error
        if not resolved.is_relative_to(base):
            raise InvalidLogPathError()
        if not resolved.is_file():
            raise LogNotFoundError()
        return resolved

    def _log_files(self, listed_only: bool) -> list[tuple[str, Path]]:
        """(name, checked path) of the log files, in natural name order."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        files = []
        for name in sorted(names, key=_sort_key):
            wanted = name.startswith(self.log_name) if listed_only else self._is_log_file_name(name)
            if not wanted:
                continue
            try:
                files.append((name, self.resolve(name)))
            except (InvalidLogPathError, LogNotFoundError):
                continue  # vanished, a folder, or pointing outside: not served
        return files

    # -- listing --------------------------------------------------------------------------

    async def list_files(self) -> LogListResponse:
        return await run_blocking(self._list_files)

    def _list_files(self) -> LogListResponse:
        infos = []
        for name, path in self._log_files(listed_only=True):
            try:
                with open(path, "rb") as file:
                    size = os.fstat(file.fileno()).st_size
                    try:
                        first, last = self._edge_timestamps(file, size)
                    except OSError:
                        first = last = None
            except FileNotFoundError:
                continue  # rotated away meanwhile
            except OSError:
                size = 0
                first = last = None
            infos.append(
                LogFileInfo(name=name, size=size, first_timestamp=first, last_timestamp=last)
            )
        return LogListResponse(
            files=infos,
            directory=str(self.directory),
            max_bytes=self.max_bytes,
            backup_count=self.backup_count,
        )

    @staticmethod
    def _edge_timestamps(file: BinaryIO, size: int) -> tuple[str | None, str | None]:
        head = file.read(min(size, EDGE_BYTES))
        head_lines = head.split(b"\n")
        if len(head) < size:
            head_lines.pop()  # possibly cut in the middle
        first = next(filter(None, map(_timestamp, head_lines)), None)
        start = max(0, size - EDGE_BYTES)
        file.seek(start)
        tail_lines = file.read(size - start).split(b"\n")
        if start > 0:
            tail_lines.pop(0)
        last = next(filter(None, map(_timestamp, reversed(tail_lines))), None)
        return first, last

    # -- viewing --------------------------------------------------------------------------

    async def view(self, name: str, limit: int) -> LogView:
        """The last ``limit`` lines of a log file (all of it for 0), at most
        ``MAX_VIEW_BYTES`` from its end."""
        return await run_blocking(self._view, name, limit)

    def _view(self, name: str, limit: int) -> LogView:
        path = self.resolve(name)
        logger.debug("Reading log file %s (limit %d lines)", name, limit)
        try:
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if limit > 0:
                    data, complete = self._tail_lines(file, size, limit)
                else:
                    data, complete = self._tail_bytes(file, size)
        except FileNotFoundError as error:
            raise LogNotFoundError() from error
        except OSError as error:
            raise LogReadError(f"Error reading log file: {error.strerror or error}") from error
        content = data.decode("utf-8", errors="replace")
        if not complete:
            content = (
                f"[Only the last {MAX_VIEW_BYTES // (1024 * 1024)} MiB of {name} "
                f"({size} bytes) are shown; download the file for the complete log.]\n" + content
            )
        return LogView(filename=name, content=content, truncated=not complete)

    @staticmethod
    def _tail_bytes(file: BinaryIO, size: int) -> tuple[bytes, bool]:
        if size <= MAX_VIEW_BYTES:
            return file.read(size), True
        file.seek(size - MAX_VIEW_BYTES)
        data = file.read(MAX_VIEW_BYTES)
        newline = data.find(b"\n")
        return (data[newline + 1 :] if newline >= 0 else data), False

    @staticmethod
    def _tail_lines(file: BinaryIO, size: int, lines: int) -> tuple[bytes, bool]:
        """The last ``lines`` lines, reading blocks backwards from ``size``."""
        blocks: list[bytes] = []
        position = size
        newlines = 0
        read = 0
        # One newline more than lines: the first wanted line is then complete.
        while position > 0 and newlines <= lines and read < MAX_VIEW_BYTES:
            step = min(BLOCK_BYTES, position, MAX_VIEW_BYTES - read)
            position -= step
            file.seek(position)
            block = file.read(step)
            blocks.append(block)
            newlines += block.count(b"\n")
            read += len(block)
        data = b"".join(reversed(blocks))
        parts = data.splitlines(keepends=True)
        enough = newlines > lines or position == 0
        if not enough and parts:
            parts.pop(0)  # cut by the byte limit
        return b"".join(parts[-lines:]), enough

    # -- download -----------------------------------------------------------------------

    async def open_download(self, name: str) -> tuple[Iterator[bytes], int]:
        """A chunk iterator over the file as it is now, and its size."""
        return await run_blocking(self._open_download, name)

    def _open_download(self, name: str) -> tuple[Iterator[bytes], int]:
        path = self.resolve(name)
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed by the iterator
        except FileNotFoundError as error:
            raise LogNotFoundError() from error
        except OSError as error:
            raise LogReadError(f"Error reading log file: {error.strerror or error}") from error
        size = os.fstat(file.fileno()).st_size
        logger.debug("Sending log file %s (%d bytes)", name, size)
        return self._chunks(file, size), size

    @staticmethod
    def _chunks(file: BinaryIO, size: int) -> Iterator[bytes]:
        # Only ``size`` bytes: the current log grows while it is sent, and the
        # response announced this length.
        with file:
            remaining = size
            while remaining > 0:
                chunk = file.read(min(BLOCK_BYTES, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    # -- ZIP ----------------------------------------------------------------------------

    async def zip_all(self) -> Iterator[bytes]:
        """A streamed ZIP of every log file. :raises NoLogFilesError:"""
        files = await run_blocking(self._log_files, False)
        if not files:
            raise NoLogFilesError()
        logger.debug("Sending %d log files as ZIP", len(files))
        return self._zip_chunks([path for _, path in files])

    @staticmethod
    def _zip_chunks(paths: list[Path]) -> Iterator[bytes]:
        """Build the archive while it is sent: memory holds about one block."""
        sink = _ChunkSink()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in paths:
                try:
                    source = open(path, "rb")  # noqa: SIM115 - closed below
                except OSError:
                    continue  # rotated away or unreadable: leave it out
                with source:
                    stat = os.fstat(source.fileno())
                    info = zipfile.ZipInfo(path.name, time.localtime(stat.st_mtime)[:6])
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.file_size = stat.st_size  # lets zipfile decide about ZIP64
                    with archive.open(info, "w") as entry:
                        remaining = stat.st_size
                        while remaining > 0:
                            chunk = source.read(min(BLOCK_BYTES, remaining))
                            if not chunk:
                                break
                            remaining -= len(chunk)
                            entry.write(chunk)
                            if data := sink.take():
                                yield data
        if data := sink.take():
            yield data

    # -- live log -----------------------------------------------------------------------

    def subscribe(self) -> LogSubscription:
        """Start collecting new log lines (call before accepting the socket, so no
        line logged after the client connected is missed)."""
        return self.fanout.subscribe()

    @staticmethod
    async def follow(subscription: LogSubscription) -> AsyncIterator[str]:
        """New log lines as they are logged, with a notice where a slow reader
        lost lines."""
        reported = 0
        while True:
            lines = await subscription.next_lines()
            if subscription.dropped > reported:
                yield (
                    f"[log stream: {subscription.dropped - reported} lines were dropped "
                    "because this client did not keep up]"
                )
                reported = subscription.dropped
            for line in lines:
                yield line
