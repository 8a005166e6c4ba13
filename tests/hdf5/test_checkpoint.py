"""Journal checkpoints: the journal stays a few seconds long however long the
measurement, and the full chunks before it can be read without the HDF5 index."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tables

from icoapi.hdf5.journal import journal_path
from icoapi.hdf5.salvage import SalvageError, read_chunk, salvage_chunks
from icoapi.hdf5.writer import MeasurementWriter

Factory = Callable[..., MeasurementWriter]
ROW_BYTES = 13  # counter, timestamp, x


def batch(start: int, count: int) -> tuple[np.ndarray, ...]:
    index = np.arange(start, start + count)
    times = (index[:, None] + np.arange(3)[None, :] / 3) / 3174.6
    values = np.repeat((index % 1000).astype(np.float32)[:, None], 3, axis=1)
    return index % 256, times, values


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_journal_stays_bounded_over_a_long_measurement(
    make_writer: Factory, tmp_path: Path
) -> None:
    writer = make_writer(["first"], flush_interval=0.02, checkpoint_interval=0.05)
    frames_per_batch = 4000  # 12,000 rows: about a chunk (10,082 rows)
    sent = 0
    peak = 0
    for _ in range(60):  # 720,000+ rows: 9.4 MB of rows, 76 s at the default rate
        checkpoints = writer.checkpoints
        writer.append(*batch(sent, frames_per_batch))
        sent += frames_per_batch
        wait_until(lambda: writer.rows == 3 * sent)  # noqa: B023
        peak = max(peak, writer.journal_bytes)
        # A checkpoint follows a flush, and a flush follows data: a frame at a time
        # until the writer has made one.
        while writer.checkpoints == checkpoints:
            writer.append(*batch(sent, 1))
            sent += 1
            wait_until(lambda: writer.rows == 3 * sent)  # noqa: B023
        peak = max(peak, writer.journal_bytes)
    writer.close()
    assert writer.error is None
    # The journal holds its header, less than one chunk carried over and the rows
    # since the last checkpoint (at most two batches here: a checkpoint can be
    # under way when a batch arrives), not the 9.4 MB of rows.
    assert writer.checkpoints >= 60
    assert peak < (10_082 + 2 * 3 * frames_per_batch) * ROW_BYTES + 64 * 1024
    with tables.open_file(tmp_path / "m.hdf5") as h5:
        table = h5.root.acceleration
        assert table.nrows == 3 * sent
        np.testing.assert_array_equal(table.col("counter"), np.repeat(np.arange(sent) % 256, 3))
    assert not journal_path(tmp_path / "m.hdf5").exists()


def test_full_chunks_are_read_without_the_hdf5_index(make_writer: Factory, tmp_path: Path) -> None:
    writer = make_writer(["first"])
    writer.append(*batch(0, 20_000))  # 60,000 rows: 5 full chunks and a part
    writer.close()
    path = tmp_path / "m.hdf5"
    with tables.open_file(path) as h5:
        table = h5.root.acceleration
        rows = table.read()
        dtype, chunk_rows = table.dtype, int(table.chunkshape[0])
    with open(path, "r+b") as file:
        file.write(b"\0" * 4096)  # superblock and root group gone
    assert not tables.is_hdf5_file(str(path))
    chunks = salvage_chunks(path, dtype, chunk_rows, 5, before_timestamp=2**63)
    assert [start for _, start in chunks] == [index * chunk_rows for index in range(5)]
    salvaged = np.concatenate([read_chunk(path, offset, dtype, chunk_rows) for offset, _ in chunks])
    assert salvaged.tobytes() == rows[: 5 * chunk_rows].tobytes()
    with pytest.raises(SalvageError):  # the sixth chunk is partial
        salvage_chunks(path, dtype, chunk_rows, 6, before_timestamp=2**63)
