"""Startup recovery of measurement files whose writer did not close them.

A journal next to a measurement file (see :mod:`icoapi.hdf5.journal`) means the
process ended while the file was written. For each one:

* if the HDF5 file opens and holds its tables, the rows it lacks (those the
  journal has beyond the file's row count) are appended, and the attribute and
  metadata updates of the journal are applied again;
* otherwise the file is rebuilt from the journal into a temporary file that then
  replaces it;

either way ``/acceleration`` gets ``measurement_status = "interrupted"``, its real
``rows``, ``frames``, ``lost_frames`` and the ``dataloss`` of the journal's rows,
and the journal is removed.
Memory stays bounded: the journal is read record by record.
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
from icoapi.hdf5.journal import LOST, SUFFIX, RecordKind, measurement_path, read_journal
from icoapi.hdf5.layout import (
    HDF5_LOCK,
    SensorRow,
    attribute_value,
    create_measurement_file,
    describe_error,
    loss_fraction,
)

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Recovery:
    """What happened to one interrupted file."""

    path: Path
    rows: int
    rebuilt: bool
    error: str | None = None


def recover_interrupted(folder: Path) -> list[Recovery]:
    """Recover every interrupted measurement file in ``folder`` (blocking)."""
    results: list[Recovery] = []
    if not folder.is_dir():
        return results
    for journal in sorted(folder.glob(f".*.hdf5{SUFFIX}")):
        results.append(recover_file(journal))
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
    logger.info(
        "Recovered interrupted measurement %s: %d rows%s",
        path.name,
        result.rows,
        " (rebuilt from its journal)" if result.rebuilt else "",
    )
    return result


def _header(journal: Path) -> dict[str, Any] | None:
    for kind, payload in read_journal(journal):
        if kind is RecordKind.HEADER:
            header: dict[str, Any] = json.loads(payload)
            return header
        return None
    return None


def _open_existing(path: Path) -> tables.File | None:
    try:
        if not tables.is_hdf5_file(str(path)):
            return None
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
    h5 = _open_existing(path) if path.exists() else None
    if h5 is not None:
        try:
            rows = _replay(journal, h5)
            h5.flush()
            h5.close()
            return Recovery(path, rows, False)
        except Exception as error:
            # It opened, but its insides are damaged: the journal has everything.
            logger.warning(
                "%s is damaged (%s); rebuilding it from its journal",
                path.name,
                describe_error(error),
            )
            with contextlib.suppress(Exception):
                h5.close()
    return _rebuild(journal, path)


def _rebuild(journal: Path, path: Path) -> Recovery:
    header = _header(journal)
    if header is None:
        raise ValueError("the file is unreadable and its journal has no header")
    temporary = path.with_name(f".{path.name}.recovering")
    temporary.unlink(missing_ok=True)
    h5, _ = create_measurement_file(
        temporary,
        header["channels"],
        [SensorRow(**sensor) for sensor in header["sensors"]],
        header["attributes"],
    )
    try:
        rows = _replay(journal, h5)
        h5.flush()
    finally:
        h5.close()
    with open(temporary, "rb") as file:
        os.fsync(file.fileno())
    os.replace(temporary, path)
    return Recovery(path, rows, True)


def _replay(journal: Path, h5: tables.File) -> int:
    """Append the rows the file lacks, apply the updates, mark it interrupted."""
    table = h5.get_node("/acceleration")
    rows_per_frame = 3 if len(table.colnames) == 3 else 1
    present = int(table.nrows)
    seen = 0
    lost = 0
    for kind, payload in read_journal(journal):
        if kind is RecordKind.ROWS:
            lost += LOST.unpack_from(payload)[0]
            rows = np.frombuffer(payload, dtype=table.dtype, offset=LOST.size)
            skip = min(max(present - seen, 0), len(rows))
            seen += len(rows)
            if skip < len(rows):
                table.append(rows[skip:])
        elif kind is RecordKind.ATTRIBUTES:
            for key, value in json.loads(payload).items():
                table.attrs[key] = attribute_value(value)
        elif kind is RecordKind.METADATA:
            document = json.loads(payload)
            metadata_io.write_metadata(h5, document["prefix"], document["metadata"])
    table.flush()
    total = int(table.nrows)
    frames = total // rows_per_frame
    table.attrs["measurement_status"] = INTERRUPTED
    table.attrs["rows"] = total
    table.attrs["frames"] = frames
    table.attrs["lost_frames"] = lost
    table.attrs["dataloss"] = loss_fraction(lost, frames)
    return total
