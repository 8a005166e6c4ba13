"""Reading measurement data back: the IFT input, the start of a measurement."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import tables

from icoapi.hdf5.layout import AXES, HDF5_LOCK
from icoapi.hdf5.metadata import raw_attribute


def read_channel(
    path: Path, channel: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(timestamps in s, values)`` of one channel (``first``/``second``/``third``)
    of a closed measurement file.

    :raises KeyError: if the file has no such channel."""
    column = AXES[channel]
    with HDF5_LOCK, tables.open_file(str(path), "r") as h5file:
        table = h5file.root.acceleration
        if column not in table.colnames:
            raise KeyError(f"{path.name} has no channel {channel!r}")
        values = table.col(column).astype(np.float64)
        timestamps = table.col("timestamp").astype(np.float64) / 1e6
    return timestamps, values


def measurement_start(path: Path) -> datetime | None:
    """When the measurement in a file written by icoapi started (its first
    sample, ``Start_Time``); None for other files, unreadable ones, or files
    open for writing in this process."""
    try:
        with HDF5_LOCK, tables.open_file(str(path), "r") as h5file:
            if "/acceleration" not in h5file:
                return None
            table = h5file.get_node("/acceleration")
            names = table._v_attrs._v_attrnames
            if "icoapi_version" not in names or "Start_Time" not in names:
                return None
            value = raw_attribute(table, "Start_Time")
    except Exception:
        return None
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
