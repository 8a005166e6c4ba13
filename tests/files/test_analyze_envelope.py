"""The analyze stream of a long file: a min/max envelope of bounded size that
keeps every peak with its exact value, timestamp and counter."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from icoapi.files.analyze import envelope_rows
from tests.files.helpers import API, write_long_file

MAX_STREAM_BYTES = 12 * 1000 * 1000
POINTS = 200_000  # ICOAPI_ANALYZE_POINTS default


def consume(client: TestClient, name: str) -> dict[str, Any]:
    """Drive the ASGI app directly (the test client would buffer the body) and
    keep the rows as arrays."""
    path = f"{API}/files/analyze/{name}"
    state: dict[str, Any] = {"bytes": 0, "progress": [], "rows": [], "status": None}

    async def run() -> None:
        tail = b""
        done = asyncio.Event()

        requested = False

        async def receive() -> dict[str, Any]:
            # As a server does: the (empty) request body first, then the
            # disconnect once the response is complete.
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal tail
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                return
            body = message.get("body", b"")
            state["bytes"] += len(body)
            *complete, tail = (tail + body).split(b"\n")
            for line in complete:
                item = json.loads(line)
                if "progress" in item:
                    state["progress"].append(item["progress"])
                elif "name" in item:
                    columns = [item["counter"], item["timestamp"]]
                    columns += [d["data"] for d in item["datasets"]]
                    state["rows"].append(np.array(columns, dtype=np.float64).T)
            if not message.get("more_body", False):
                done.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("test", 1),
            "server": ("testserver", 80),
        }
        await client.app(scope, receive, send)  # type: ignore[arg-type]

    assert client.portal is not None
    client.portal.call(run)
    state["table"] = np.concatenate(state["rows"]) if state["rows"] else np.zeros((0, 5))
    return state


def test_long_file_envelope_keeps_every_spike(client: TestClient, measurements: Path) -> None:
    rows = 3_000_000  # 5 minutes at 9.5 kHz
    spikes = {(1_500_003, "x"): 1234.5, (2_000_007, "y"): -777.25, (17, "z"): 99.0}
    write_long_file(measurements / "long.hdf5", rows, spikes)
    tracemalloc.start()
    try:
        state = consume(client, "long.hdf5")
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert state["status"] == 200
    table = state["table"]
    assert state["bytes"] <= MAX_STREAM_BYTES
    assert len(table) <= POINTS  # values per channel
    assert len(table) >= POINTS // 6  # at least one row per bucket
    assert np.all(np.diff(table[:, 1]) > 0)  # time order, no row twice
    # every row sent is a real row: counter and values belong to its timestamp
    index = (table[:, 1] / 105).astype(np.int64)
    np.testing.assert_array_equal(table[:, 0], index % 256)
    normal = ~np.isin(index, [row for row, _ in spikes])
    np.testing.assert_allclose(table[normal, 2], np.sin(index[normal] / 5000), atol=1e-6)
    for (row, column), value in spikes.items():
        found = table[table[:, 1] == row * 105]
        assert len(found) == 1, (row, column)
        assert found[0][0] == row % 256
        assert found[0][2 + "xyz".index(column)] == value  # exact, as stored
    # the envelope covers the whole signal: its extremes are those of the file
    assert table[:, 2].max() == 1234.5
    assert table[:, 3].min() == -777.25
    assert state["progress"] == sorted(state["progress"]) and state["progress"][-1] == 1.0
    assert traced_peak < 40 * 1024 * 1024  # measured: about 10 MB, one read step


def test_stream_size_does_not_grow_with_the_file(client: TestClient, measurements: Path) -> None:
    """Noise: each channel has its extremes on other rows (the largest envelope)."""
    short = write_long_file(measurements / "a.hdf5", 1_000_000, {}, noise=True)
    long = write_long_file(measurements / "b.hdf5", 4_000_000, {}, noise=True)
    short_stream, long_stream = consume(client, short.name), consume(client, long.name)
    assert len(long_stream["table"]) <= POINTS
    assert long_stream["bytes"] <= MAX_STREAM_BYTES
    assert abs(long_stream["bytes"] - short_stream["bytes"]) < 0.1 * short_stream["bytes"]


def test_short_file_streams_every_row(client: TestClient, measurements: Path) -> None:
    write_long_file(measurements / "short.hdf5", POINTS, {(12_345, "x"): 5.5})
    table = consume(client, "short.hdf5")["table"]
    assert len(table) == POINTS
    np.testing.assert_array_equal(table[:, 1], np.arange(POINTS) * 105)
    assert table[12_345, 2] == 5.5


def test_envelope_rows_picks_min_and_max_per_bucket() -> None:
    block = np.zeros(10, dtype=[("x", "f4"), ("y", "f4")])
    block["x"] = [0, 5, 1, -2, 3, 3, 9, 0, 0, np.nan]
    block["y"] = [1, 1, 1, 1, 1, 1, 1, 1, 7, 1]
    # buckets of 4 rows: [0..3], [4..7], [8..9]
    assert envelope_rows(block, ["x", "y"], 4).tolist() == [0, 1, 3, 4, 6, 7, 8, 9]
