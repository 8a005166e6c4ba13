"""Reading measurement data back: the IFT input.

(Files from outside go through :mod:`icoapi.hdf5.reader`, behind the hostile-file
check; this reads the file the running measurement has just written.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import tables

from icoapi.hdf5.layout import ACCELERATION_PATH, AXES, HDF5_LOCK


def read_channel(
    path: Path, channel: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(timestamps in s, values)`` of one channel (``first``/``second``/``third``)
    of a closed measurement file.

    :raises KeyError: if the file has no such channel."""
    column = AXES[channel]
    with HDF5_LOCK, tables.open_file(str(path), "r") as h5file:
        table = h5file.get_node(ACCELERATION_PATH)
        if column not in table.colnames:
            raise KeyError(f"{path.name} has no channel {channel!r}")
        values = table.col(column).astype(np.float64)
        timestamps = table.col("timestamp").astype(np.float64) / 1e6
    return timestamps, values
