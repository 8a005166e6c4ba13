"""The writer's journal, kept to a few seconds of data by checkpoints.

Between checkpoints the journal grows by the rows the writer takes (see
:mod:`icoapi.hdf5.journal`). A checkpoint, right after an HDF5 flush:

1. fsyncs the HDF5 file;
2. verifies that every table chunk that became full since the last checkpoint
   decodes from the disk (with :mod:`icoapi.hdf5.salvage`, the reader recovery
   uses when the file's index is damaged) to the rows the table holds;
3. writes a new journal beside the old one: a header with everything written so
   far except the rows and metadata (layout, sensors, attributes, frames lost),
   ``first_row`` = the start of the table's last, partly filled chunk, and the
   rows from there on (less than one chunk); fsyncs it;
4. renames it over the old journal (atomic) and fsyncs the folder.

A kill at any moment leaves the old journal or the new one, each complete from
its ``first_row``; the rows before it are in full chunks that were verified on
disk and are never written again. The journal therefore holds at most one
checkpoint interval plus one chunk of rows (plus both for the moment of the
rename), whatever the length of the measurement.

Metadata documents (up to 7 MiB each, pictures included) are not copied at each
checkpoint: each is also appended once to ``<journal>.meta`` beside the journal,
which recovery reads when it rebuilds a file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from icoapi.hdf5.journal import JournalWriter, RecordKind, journal_path
from icoapi.hdf5.salvage import decode_chunk

logger = logging.getLogger(__name__)

NEXT_SUFFIX = ".next"
METADATA_SUFFIX = ".meta"


def metadata_path(journal: Path) -> Path:
    """The side file with the metadata documents of a journal's measurement."""
    return journal.with_name(journal.name + METADATA_SUFFIX)


def fsync_path(path: Path, directory: bool = False) -> None:
    """Write the file's (or folder's) data and metadata to the disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointedJournal:
    """The journal of one measurement file, restarted at each checkpoint.

    Owned by the writer thread. ``header`` is the header of the next journal:
    updated with every attribute and metadata record written."""

    def __init__(
        self,
        path: Path,
        header: dict[str, Any],
        chunk_rows: int,
        interval: float,
    ) -> None:
        self.path = path
        self.journal = journal_path(path)
        self.chunk_rows = chunk_rows
        self.interval = interval
        self.header: dict[str, Any] = {
            **header,
            "first_row": 0,
            "lost": 0,
            "chunk_rows": chunk_rows,
        }
        self.chunk_rows = int(chunk_rows)
        self.lost = 0  # frames lost, as written to the journals so far
        self.checkpoints = 0
        self.verified_chunks = 0
        self.last_checkpoint = time.monotonic()
        self._failed_verification = False
        self._metadata: JournalWriter | None = None
        self._newest_us = 0  # sample time of the newest row journaled
        self._checkpoint_us = 0  # ... as of the last checkpoint
        self._writer = JournalWriter(self.journal)
        self._writer.write_json(RecordKind.HEADER, self.header)
        self._writer.sync()

    def write_rows(self, rows: npt.NDArray[Any], lost: int) -> None:
        self._writer.write_rows(memoryview(rows).cast("B"), lost)
        self.lost += lost
        if len(rows):
            self._newest_us = int(rows["timestamp"][-1])

    def write_attributes(self, document: dict[str, Any]) -> None:
        self._writer.write_json(RecordKind.ATTRIBUTES, document)
        self.header["attributes"].update(document)

    def write_metadata(self, prefix: str, document: dict[str, Any]) -> None:
        record = {"prefix": prefix, "metadata": document}
        self._writer.write_json(RecordKind.METADATA, record)
        if self._metadata is None:
            self._metadata = JournalWriter(metadata_path(self.journal))
        self._metadata.write_json(RecordKind.METADATA, record)
        self._metadata.sync()

    def sync(self) -> None:
        self._writer.sync()

    @property
    def due(self) -> bool:
        """The interval passed by the clock, or the journal holds that much data
        (after a slow fsync, say, the rows that waited arrive in a burst)."""
        if time.monotonic() - self.last_checkpoint >= self.interval:
            return True
        return self._newest_us - self._checkpoint_us >= self.interval * 1e6

    def checkpoint(self, table: Any, rows: int) -> bool:
        """Restart the journal after a flush that put ``rows`` rows into the file
        (the caller holds the HDF5 lock and has no rows pending). False if the
        file could not be verified (the journal then goes on growing)."""
        self.last_checkpoint = time.monotonic()
        self._checkpoint_us = self._newest_us
        fsync_path(self.path)
        rows = int(rows)
        full_chunks = rows // self.chunk_rows
        if not self._verify(table, full_chunks):
            return False
        first_row = full_chunks * self.chunk_rows
        header = {**self.header, "first_row": first_row, "lost": self.lost}
        following = self.journal.with_name(self.journal.name + NEXT_SUFFIX)
        following.unlink(missing_ok=True)
        writer = JournalWriter(following)
        try:
            writer.write_json(RecordKind.HEADER, header)
            if rows > first_row:
                tail = np.ascontiguousarray(table.read(first_row, rows))
                writer.write_rows(memoryview(tail).cast("B"), 0)
            writer.sync()
            os.replace(following, self.journal)
        except BaseException:
            writer.close(remove=True)
            raise
        writer.path = self.journal
        fsync_path(self.path.parent, directory=True)
        self._writer.close(remove=False)
        self._writer = writer
        self.verified_chunks = full_chunks
        self.checkpoints += 1
        return True

    def _verify(self, table: Any, full_chunks: int) -> bool:
        with open(self.path, "rb") as file:
            for chunk in range(self.verified_chunks, full_chunks):
                start = chunk * self.chunk_rows
                info = table.chunk_info((start,))
                raw = os.pread(file.fileno(), info.size, info.offset)
                decoded = decode_chunk(raw, table.dtype, self.chunk_rows)
                expected = table.read(start, start + self.chunk_rows)
                if decoded is None or decoded[0].tobytes() != expected.tobytes():
                    if not self._failed_verification:
                        logger.error(
                            "%s: chunk %d does not read back from the disk as written; "
                            "the journal keeps every row from now on",
                            self.path.name,
                            chunk,
                        )
                        self._failed_verification = True
                    return False
        return True

    def close(self, remove: bool) -> None:
        self._writer.close(remove=remove)
        if self._metadata is not None:
            self._metadata.close(remove=remove)

    def size(self) -> int:
        """Bytes the journal files take now."""
        total = 0
        following = self.journal.with_name(self.journal.name + NEXT_SUFFIX)
        for path in (self.journal, following, metadata_path(self.journal)):
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total
