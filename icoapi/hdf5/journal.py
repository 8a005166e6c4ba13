"""The append-only journal kept next to a measurement file while it is written.

HDF5 (through PyTables) has no journal of its own: a process killed or a power
cut while the library flushes can leave a file whose internal structures point
past its end. So the writer first appends everything it puts into the HDF5 file
to ``.<name>.hdf5.journal``: a header, then rows, attribute and metadata updates
in order. The journal is fsynced at least once a second (before each HDF5
flush); a clean close removes it, so a journal found at startup marks an
interrupted measurement, and :mod:`icoapi.hdf5.recovery` completes or rebuilds
the file from it.

The journal does not grow with the measurement: at each checkpoint the writer
starts a new one (see :mod:`icoapi.hdf5.checkpoint`). Its header says where it
begins: ``first_row`` (a chunk boundary of the table: the rows before it are in
full, compressed chunks of the fsynced HDF5 file, which recovery can read even
when the file's own index is damaged), the frames ``lost`` before it, the
layout, sensors and every attribute and metadata document written so far.

Record format (little endian)::

    magic b"ICOJ" | kind u8 | payload length u32 | CRC-32 of payload u32 | payload

Reading stops at the first record that is cut off (the tail written just
before the kill) or has no valid header; a complete record whose checksum does
not match is skipped and reported (:class:`JournalDamage`): its frames count as
lost.
While a measurement runs the journal holds the raw rows since the last
checkpoint (uncompressed: 124 kB/s at the default single-channel rate).
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"ICOJ"
RECORD = struct.Struct("<4sBII")
LOST = struct.Struct("<Q")
SUFFIX = ".journal"


class RecordKind(IntEnum):
    HEADER = 1  # JSON: channels, sensors, attributes, metadata, first_row, lost, chunk_rows
    ROWS = 2  # u64 frames lost before these rows, then the rows' raw bytes
    ATTRIBUTES = 3  # JSON: {name: value}
    METADATA = 4  # JSON: {"prefix": ..., "metadata": ...}


def journal_path(path: Path) -> Path:
    """The journal of measurement file ``path`` (hidden: listings skip it)."""
    return path.with_name(f".{path.name}{SUFFIX}")


def measurement_path(journal: Path) -> Path:
    """The measurement file a journal belongs to."""
    return journal.with_name(journal.name[1 : -len(SUFFIX)])


class JournalWriter:
    """Appends records; :meth:`sync` makes them durable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Unbuffered: every record reaches the operating system at once, so a
        # killed process loses nothing it wrote (only a power cut can lose the
        # records since the last sync).
        self._file: BinaryIO = open(path, "xb", buffering=0)  # noqa: SIM115 (see close())
        self._unsynced = False

    def write(self, kind: RecordKind, payload: bytes) -> None:
        self._append(kind, (payload,))

    def write_json(self, kind: RecordKind, document: Any) -> None:
        self.write(kind, json.dumps(document, ensure_ascii=False).encode("utf-8"))

    def write_rows(self, rows: bytes | memoryview, lost: int) -> None:
        """A rows record; ``rows`` are the rows' raw bytes (a byte view of the
        array is enough: it is written as it is, not copied)."""
        self._append(RecordKind.ROWS, (LOST.pack(lost), rows))

    def _append(self, kind: RecordKind, parts: tuple[bytes | memoryview, ...]) -> None:
        """One record whose payload is ``parts`` joined, written with one system
        call and without joining them in memory."""
        length = 0
        crc = 0
        for part in parts:
            length += len(part)
            crc = zlib.crc32(part, crc)
        buffers = [RECORD.pack(MAGIC, kind, length, crc), *parts]
        written = os.writev(self._file.fileno(), buffers)
        if written < RECORD.size + length:  # a short write (a signal): the rest follows
            rest = memoryview(b"".join(buffers))[written:]
            while rest:
                rest = rest[self._file.write(rest) or 0 :]
        self._unsynced = True

    def sync(self) -> None:
        """Hand everything written to the operating system and to the disk."""
        if self._unsynced:
            os.fsync(self._file.fileno())
            self._unsynced = False

    def close(self, remove: bool) -> None:
        """Close; ``remove`` deletes the journal (the HDF5 file is complete)."""
        if not self._file.closed:
            self._file.close()
        if remove:
            self.path.unlink(missing_ok=True)


@dataclass
class JournalDamage:
    """Rows records a reader could not use: their rows are lost.

    ``row_bytes`` counts the row bytes the damaged records claimed (their
    headers were intact), ``records`` how many there were."""

    records: int = 0
    row_bytes: int = 0

    def add(self, kind: int, length: int) -> None:
        self.records += 1
        if kind == RecordKind.ROWS:
            self.row_bytes += max(length - LOST.size, 0)


def read_journal(
    path: Path, damage: JournalDamage | None = None
) -> Iterator[tuple[RecordKind, bytes]]:
    """The valid records of a journal, in order.

    A record with an intact header but a wrong checksum is skipped and counted
    in ``damage``; one cut off by the end of the file (the write the process
    did not finish) ends the journal."""
    with open(path, "rb") as file:
        while True:
            head = file.read(RECORD.size)
            if len(head) < RECORD.size:
                return
            magic, kind, length, crc = RECORD.unpack(head)
            if magic != MAGIC or kind not in RecordKind._value2member_map_:
                return
            payload = file.read(length)
            if len(payload) < length:
                return  # the record being written when the process ended
            if zlib.crc32(payload) != crc:
                if damage is not None:
                    damage.add(kind, length)
                continue
            yield RecordKind(kind), payload
