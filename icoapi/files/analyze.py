"""The analyze stream of a measurement file (``GET /files/analyze/{name}``).

Newline-delimited JSON, as the web client parses it: the metadata document, then
chunks of rows (``{"name", "counter", "timestamp", "datasets": [{"name", "data"}]}``),
each followed by a progress line, then ``{"progress": 1.0}``.

* A file of at most ``points`` rows (``ICOAPI_ANALYZE_POINTS``) is sent whole:
  every row, in chunks of :data:`CHUNK_ROWS`.
* A longer file is sent as a **min/max envelope**: its rows are cut into
  ``points // (2 * channels)`` buckets of equal length, and each bucket
  contributes the rows that hold the minimum and the maximum of each channel, in
  time order, each with its own counter and timestamp. Every peak is in the
  stream with its exact value and time, and no channel gets more than
  ``points`` values, however long the file.

The file is read in steps of about :data:`READ_ROWS` rows (re-opened for each
step, so a client that goes away leaves nothing open), so time is linear and
memory constant in the file's length.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from icoapi.core.tasks import run_blocking
from icoapi.files.access import opened
from icoapi.hdf5.reader import ROW_KEYS
from icoapi.hdf5.validation import FileVerdicts

CHUNK_ROWS = 1000
READ_ROWS = 100_000
DEFAULT_POINTS = 200_000


def json_array(values: npt.NDArray[Any]) -> str:
    """A JSON array of numbers; floats in their shortest form for their width
    (float32 ``1234.5`` stays ``1234.5``), NaN and infinities as ``null``."""
    kind = values.dtype.kind
    if kind in "iu":
        return "[" + ",".join(values.astype(str).tolist()) + "]"
    if kind == "f":
        texts = values.astype(str)
        if not np.isfinite(values).all():
            texts[~np.isfinite(values)] = "null"
        return "[" + ",".join(texts.tolist()) + "]"
    return json.dumps([_plain(item) for item in values.tolist()])


def _plain(item: Any) -> Any:
    if isinstance(item, bytes):
        return item.decode("utf-8", errors="replace")
    if isinstance(item, float) and not math.isfinite(item):
        return None
    return item


def envelope_rows(
    block: npt.NDArray[Any], columns: list[str], bucket_rows: int
) -> npt.NDArray[Any]:
    """Indices (sorted) of the rows of ``block`` holding the minimum and maximum
    of each column in each bucket of ``bucket_rows`` rows (NaN counts as neither)."""
    count = len(block)
    buckets = -(-count // bucket_rows)
    padded = buckets * bucket_rows
    picks = []
    for column in columns:
        values = np.asarray(block[column], dtype=np.float64)
        low = np.full(padded, np.inf)
        high = np.full(padded, -np.inf)
        finite = np.isfinite(values)
        low[:count] = np.where(finite, values, np.inf)
        high[:count] = np.where(finite, values, -np.inf)
        picks.append(np.argmin(low.reshape(buckets, bucket_rows), axis=1))
        picks.append(np.argmax(high.reshape(buckets, bucket_rows), axis=1))
    if not picks:
        picks.append(np.zeros(buckets, dtype=np.int64))
    offsets = (np.arange(buckets) * bucket_rows)[:, None]
    indices = np.sort(np.stack(picks, axis=1), axis=1)
    keep = np.ones_like(indices, dtype=bool)
    keep[:, 1:] = indices[:, 1:] != indices[:, :-1]
    rows: npt.NDArray[Any] = (indices + offsets)[keep]
    return rows[rows < count]


class AnalyzeStream:
    """The stream of one file. ``points``: values per channel above which the
    envelope is sent (its upper bound)."""

    def __init__(self, path: Path, verdicts: FileVerdicts, points: int = DEFAULT_POINTS) -> None:
        self.path = path
        self.verdicts = verdicts
        self.points = points

    def layout(self) -> tuple[int, list[str]]:
        """Rows and value columns (blocking; raises the files errors)."""
        with opened(self.path, self.verdicts) as reader:
            return reader.nrows, reader.data_columns()

    async def lines(self, header: bytes, nrows: int, columns: list[str]) -> AsyncIterator[bytes]:
        yield header
        if nrows <= self.points:
            bucket_rows = 1
            step = READ_ROWS
        else:
            buckets = max(1, self.points // (2 * max(1, len(columns))))
            bucket_rows = -(-nrows // buckets)
            step = bucket_rows * max(1, READ_ROWS // bucket_rows)
        for start in range(0, nrows, step):
            stop = min(start + step, nrows)
            yield await run_blocking(self._step, start, stop, nrows, bucket_rows)
        yield b'{"progress": 1.0}\n'

    def _step(self, start: int, stop: int, nrows: int, bucket_rows: int) -> bytes:
        with opened(self.path, self.verdicts) as reader:
            block = reader.rows(start, stop)
            columns = reader.data_columns()
        # Row numbers (within the step) of the rows sent.
        sent = np.arange(len(block))
        if bucket_rows > 1:
            sent = envelope_rows(block, columns, bucket_rows)
            block = block[sent]
        fields = block.dtype.names or ()
        name = json.dumps(self.path.name, ensure_ascii=False)
        lines = []
        for offset in range(0, len(block), CHUNK_ROWS):
            chunk = block[offset : offset + CHUNK_ROWS]
            keys = {key: json_array(chunk[key]) if key in fields else "[]" for key in ROW_KEYS}
            datasets = ", ".join(
                f'{{"name": {json.dumps(column)}, "data": {json_array(chunk[column])}}}'
                for column in columns
            )
            lines.append(
                f'{{"name": {name}, "counter": {keys["counter"]}, '
                f'"timestamp": {keys["timestamp"]}, "datasets": [{datasets}]}}'
            )
            # Share of the file's rows covered up to the end of this chunk.
            last = offset + len(chunk) >= len(block)
            covered = stop if last else start + int(sent[offset + len(chunk) - 1]) + 1
            lines.append(json.dumps({"progress": min(covered / nrows, 1.0)}))
        return ("\n".join(lines) + "\n").encode("utf-8")
