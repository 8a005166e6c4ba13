"""Startup recovery of measurement files whose writer did not close them.

A journal next to a measurement file (see :mod:`icoapi.hdf5.journal`) means the
process ended while the file was written. The journal holds the rows from its
``first_row`` on (the rows before it are in full chunks of the HDF5 file that
the writer verified on disk before it restarted the journal). For each one:

* if the HDF5 file opens, holds its tables and agrees with the journal (it has
  at least ``first_row`` rows, those read back in time order, and the rows it
  has beyond that are the journal's), the rows it lacks are appended and the
  attribute and metadata updates of the journal are applied again;
* otherwise the file is rebuilt into a temporary file that then replaces it:
  the rows before ``first_row`` from the old file's full chunks, read without
  its HDF5 index (:mod:`icoapi.hdf5.salvage`), then the journal's;

either way ``/acceleration`` gets ``measurement_status = "interrupted"``, its real
``rows``, ``frames``, and the ``lost_frames``/``dataloss`` of the whole
measurement: the frames the device lost plus those of journal records that were
damaged on disk. The journal is then removed. Memory stays bounded: the journal
is read record by record, the old file chunk by chunk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tables

from icoapi.hdf5 import metadata as metadata_io
from icoapi.hdf5.checkpoint import METADATA_SUFFIX, NEXT_SUFFIX, fsync_path, metadata_path
from icoapi.hdf5.journal import (
    LOST,
    SUFFIX,
    JournalDamage,
    RecordKind,
    measurement_path,
    read_journal,
)
from icoapi.hdf5.layout import (
    HDF5_LOCK,
    FrameShape,
    SensorRow,
    attribute_value,
    create_measurement_file,
    describe_error,
    loss_fraction,
)
from icoapi.hdf5.salvage import read_chunk, salvage_chunks
from icoapi.hdf5.validation import UnsafeFileError, check_file

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
CHECK_BLOCK_ROWS = 1_048_576  # rows read at a time when a file is checked (8 MiB)


@dataclass(frozen=True)
class Recovery:
    """What happened to one interrupted file."""

    path: Path
    rows: int
    rebuilt: bool
    error: str | None = None
    lost_frames: int = 0
    damaged_records: int = 0


class JournalMismatchError(Exception):
    """The HDF5 file does not agree with its journal."""


def recover_interrupted(folder: Path) -> list[Recovery]:
    """Recover every interrupted measurement file in ``folder`` (blocking)."""
    results: list[Recovery] = []
    if not folder.is_dir():
        return results
    # A journal that was being written at a checkpoint when the process ended:
    # the journal it was to replace is complete.
    for following in folder.glob(f".*.hdf5{SUFFIX}{NEXT_SUFFIX}"):
        following.unlink(missing_ok=True)
    for journal in sorted(folder.glob(f".*.hdf5{SUFFIX}")):
        results.append(recover_file(journal))
    # Metadata side files whose journal is gone (the process ended between the two).
    for side in folder.glob(f".*.hdf5{SUFFIX}{METADATA_SUFFIX}"):
        if not side.with_name(side.name[: -len(METADATA_SUFFIX)]).exists():
            side.unlink(missing_ok=True)
    return results


def recover_file(journal: Path) -> Recovery:
    path = measurement_path(journal)
    try:
        with HDF5_LOCK:
            result = _recover(journal, path)
    except Exception as error:
        # The journal stays: nothing is lost, and the next start tries again.
        logger.error("Could not recover %s: %s", path.name, describe_error(error))
        return Recovery(path, 0, False, describe_error(error))
    journal.unlink(missing_ok=True)
    metadata_path(journal).unlink(missing_ok=True)
    logger.info(
        "Recovered interrupted measurement %s: %d rows, %d frames lost%s%s",
        path.name,
        result.rows,
        result.lost_frames,
        " (rebuilt from its journal)" if result.rebuilt else "",
        f", {result.damaged_records} damaged journal records" if result.damaged_records else "",
    )
    return result


def _header(journal: Path) -> dict[str, Any]:
    for kind, payload in read_journal(journal):
        if kind is RecordKind.HEADER:
            header: dict[str, Any] = json.loads(payload)
            return header
        break
    raise ValueError("the journal has no header")


def _open_existing(path: Path) -> tables.File | None:
    """The file as it is, if it is one of ours that opens; ``None`` means rebuild
    it from its chunks and its journal (which read raw bytes, never attributes).
    The hostile-file check comes first: a file beside a journal may have been put
    there by anyone, and PyTables would unpickle its attributes on opening."""
    try:
        check_file(path)
    except (UnsafeFileError, OSError) as error:
        logger.warning("%s is not opened for recovery: %s", path.name, error)
        return None
    try:
        h5 = tables.open_file(str(path), mode="a")
    except Exception:
        return None
    try:
        table = h5.get_node("/acceleration")
        if not isinstance(table, tables.Table) or "/sensors" not in h5:
            raise ValueError("tables missing")
        _ = table.nrows
    except Exception:
        h5.close()
        return None
    return h5


def _recover(journal: Path, path: Path) -> Recovery:
    header = _header(journal)
    h5 = _open_existing(path) if path.exists() else None
    if h5 is not None:
        try:
            result = _replay(journal, header, h5, check=True)
            h5.flush()
            h5.close()
            return result
        except Exception as error:
            # It opened, but its insides are damaged: rebuild it.
            logger.warning(
                "%s is damaged (%s); rebuilding it from its chunks and its journal",
                path.name,
                describe_error(error),
            )
            with contextlib.suppress(Exception):
                h5.close()
    return _rebuild(journal, header, path)


def _rebuild(journal: Path, header: dict[str, Any], path: Path) -> Recovery:
    temporary = path.with_name(f".{path.name}.recovering")
    temporary.unlink(missing_ok=True)
    h5, table = create_measurement_file(
        temporary,
        header["channels"],
        [SensorRow(**sensor) for sensor in header["sensors"]],
        header["attributes"],
    )
    try:
        first_row = int(header.get("first_row", 0))
        if first_row:
            _append_salvaged(journal, path, table, int(header["chunk_rows"]), first_row)
        side = metadata_path(journal)
        if side.exists():
            for kind, payload in read_journal(side):
                if kind is RecordKind.METADATA:
                    record = json.loads(payload)
                    metadata_io.write_metadata(h5, record["prefix"], record["metadata"])
        result = _replay(journal, header, h5, check=False)
        h5.flush()
    finally:
        h5.close()
    fsync_path(temporary)
    os.replace(temporary, path)
    return Recovery(path, result.rows, True, None, result.lost_frames, result.damaged_records)


def _append_salvaged(
    journal: Path, path: Path, table: Any, chunk_rows: int, first_row: int
) -> None:
    """The rows before the journal's ``first_row``, from the old file's chunks."""
    if not path.exists():
        raise ValueError(f"the journal starts at row {first_row} but the file is gone")
    first_timestamp = _first_journal_timestamp(journal, table.dtype)
    chunks = salvage_chunks(path, table.dtype, chunk_rows, first_row // chunk_rows, first_timestamp)
    for offset, _ in chunks:
        table.append(read_chunk(path, offset, table.dtype, chunk_rows))


def _first_journal_timestamp(journal: Path, dtype: np.dtype[Any]) -> int:
    for kind, payload in read_journal(journal):
        if kind is RecordKind.ROWS and len(payload) > LOST.size:
            rows = np.frombuffer(payload, dtype=dtype, offset=LOST.size, count=1)
            return int(rows["timestamp"][0])
    return 2**63  # no rows after the chunks: any time


def _check_readable(table: Any, stop: int) -> None:
    """The rows before the journal read back through the file's index, their
    times in order (a torn index node would show here)."""
    previous = -1
    for start in range(0, stop, CHECK_BLOCK_ROWS):
        times = table.read(start, min(start + CHECK_BLOCK_ROWS, stop), field="timestamp")
        if len(times) and (int(times[0]) < previous or np.any(times[1:] < times[:-1])):
            raise JournalMismatchError(f"rows {start} onwards are out of order")
        previous = int(times[-1]) if len(times) else previous


def _replay(journal: Path, header: dict[str, Any], h5: tables.File, *, check: bool) -> Recovery:
    """Append the rows the file lacks, apply the updates, mark it interrupted.

    ``check``: the file was not rebuilt, so make sure it agrees with the journal
    (:class:`JournalMismatchError` otherwise). Rows of damaged journal records
    that the file does not have count as lost."""
    table = h5.get_node("/acceleration")
    itemsize = table.dtype.itemsize
    present = int(table.nrows)
    seen = int(header.get("first_row", 0))  # rows of the measurement so far
    if check and present < seen:
        raise JournalMismatchError(f"{present} rows, the journal starts at row {seen}")
    if check:
        _check_readable(table, seen)
    lost = int(header.get("lost", 0))
    damage = JournalDamage()
    damaged_rows = 0  # of the damaged records' rows, those counted so far
    missing_rows = 0  # ... and of them, those the file does not have

    def account_damage() -> None:
        nonlocal seen, damaged_rows, missing_rows
        new = damage.row_bytes // itemsize - damaged_rows
        if new:
            in_file = min(max(present - seen, 0), new)
            missing_rows += new - in_file
            damaged_rows += new
            seen += new

    for kind, payload in read_journal(journal, damage):
        account_damage()
        if kind is RecordKind.ROWS:
            lost += LOST.unpack_from(payload)[0]
            rows = np.frombuffer(payload, dtype=table.dtype, offset=LOST.size)
            skip = min(max(present - seen, 0), len(rows))
            if check and skip and table.read(seen, seen + skip).tobytes() != rows[:skip].tobytes():
                raise JournalMismatchError(f"rows {seen} to {seen + skip} differ from the journal")
            seen += len(rows)
            if skip < len(rows):
                table.append(rows[skip:])
        elif kind is RecordKind.ATTRIBUTES:
            for key, value in json.loads(payload).items():
                table.attrs[key] = attribute_value(value)
        elif kind is RecordKind.METADATA:
            document = json.loads(payload)
            metadata_io.write_metadata(h5, document["prefix"], document["metadata"])
    account_damage()
    if check and present > seen:
        raise JournalMismatchError(f"{present} rows, the journal knows {seen}")
    table.flush()
    total = int(table.nrows)
    rows_per_frame = FrameShape.of(header["channels"]).rows_per_frame
    frames = total // rows_per_frame
    lost += -(-missing_rows // rows_per_frame)  # frames with a sample missing
    table.attrs["measurement_status"] = INTERRUPTED
    table.attrs["rows"] = total
    table.attrs["frames"] = frames
    table.attrs["lost_frames"] = lost
    table.attrs["dataloss"] = loss_fraction(lost, frames)
    if damage.records:
        table.attrs["damaged_journal_records"] = damage.records
    return Recovery(Path(h5.filename), total, False, None, lost, damage.records)
