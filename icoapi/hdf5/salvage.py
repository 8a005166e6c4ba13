"""Reading the rows of a measurement file without its HDF5 index.

A kill while HDF5 updates a file's index (B-tree, object headers, superblock)
can leave a file that no longer opens, but the table's full chunks are still
there: each is written once, when it is full, and never moved or rewritten.
A chunk is ``chunk_rows`` rows, shuffled byte-wise and compressed with zlib
(the file's ``FILTERS``); zlib's own checksum tells a complete chunk from a
torn one. So recovery scans the file for zlib streams that decode to exactly
one chunk of rows whose timestamps rise, and puts them in time order: the rows
before the journal's ``first_row`` (see :mod:`icoapi.hdf5.journal`).
The writer's checkpoint checks, before it restarts the journal, that this
reader decodes the new full chunks from the disk as the table holds them.
"""

from __future__ import annotations

import mmap
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# The zlib stream header HDF5's deflate filter writes at the file's level 4
# (CMF 0x78: deflate with a 32 KiB window; FLEVEL 1 for levels 2 to 5).
ZLIB_HEADER = b"\x78\x5e"


class SalvageError(Exception):
    """The file's full chunks cannot all be found."""


def decode_chunk(
    raw: bytes | memoryview, dtype: np.dtype[Any], chunk_rows: int
) -> tuple[npt.NDArray[Any], int] | None:
    """The rows of one compressed chunk and the compressed bytes it used, or
    None if ``raw`` does not start with one complete chunk of this table."""
    size = chunk_rows * dtype.itemsize
    decompressor = zlib.decompressobj()
    try:
        data = decompressor.decompress(raw, size + 1)
    except zlib.error:
        return None
    if len(data) != size or not decompressor.eof:
        return None
    planes = np.frombuffer(data, dtype=np.uint8).reshape(dtype.itemsize, chunk_rows)
    rows = np.ascontiguousarray(planes.T).view(dtype).reshape(-1)
    return rows, len(raw) - len(decompressor.unused_data)


def is_full_chunk(rows: npt.NDArray[Any]) -> bool:
    """All rows are data: sample times rise strictly (unwritten rows are zeros)."""
    timestamps = rows["timestamp"]
    return bool(len(timestamps) and np.all(timestamps[1:] > timestamps[:-1]))


def salvage_chunks(
    path: Path, dtype: np.dtype[Any], chunk_rows: int, count: int, before_timestamp: int
) -> list[tuple[int, int]]:
    """The file offsets of the first ``count`` full chunks in time order, each
    ending before ``before_timestamp`` (µs). Memory: one entry per chunk.

    :raises SalvageError: if fewer are found."""
    if count == 0:
        return []
    window = chunk_rows * dtype.itemsize + chunk_rows * dtype.itemsize // 100 + 1024
    found: dict[int, tuple[int, int]] = {}  # first timestamp -> (offset, last timestamp)
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        view = memoryview(data)
        try:
            position = data.find(ZLIB_HEADER)
            while position >= 0:
                decoded = decode_chunk(view[position : position + window], dtype, chunk_rows)
                step = 1
                if decoded is not None:
                    rows, step = decoded
                    if is_full_chunk(rows):
                        first, last = int(rows["timestamp"][0]), int(rows["timestamp"][-1])
                        if last < before_timestamp:
                            found.setdefault(first, (position, last))
                position = data.find(ZLIB_HEADER, position + step)
        finally:
            view.release()
    ordered = sorted(found.items())[:count]
    if len(ordered) < count:
        raise SalvageError(
            f"{path.name}: found {len(ordered)} of the {count} full chunks before the journal"
        )
    previous = -1
    for first, (_, last) in ordered:
        if first <= previous:
            raise SalvageError(f"{path.name}: chunks overlap in time")
        previous = last
    return [(offset, index * chunk_rows) for index, (_, (offset, _)) in enumerate(ordered)]


def read_chunk(path: Path, offset: int, dtype: np.dtype[Any], chunk_rows: int) -> npt.NDArray[Any]:
    """The rows of the chunk at ``offset`` (found by :func:`salvage_chunks`)."""
    window = chunk_rows * dtype.itemsize + chunk_rows * dtype.itemsize // 100 + 1024
    with open(path, "rb") as file:
        file.seek(offset)
        decoded = decode_chunk(file.read(window), dtype, chunk_rows)
    if decoded is None:
        raise SalvageError(f"{path.name}: the chunk at byte {offset} no longer decodes")
    return decoded[0]
