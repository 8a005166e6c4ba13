"""GET /files/analyze/{name}: the NDJSON stream; every row of a short file, the
min/max envelope of a long one (bounded size, every peak kept)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import tables
from fastapi.testclient import TestClient

from tests.files.helpers import API, write_measurement


def lines_of(client: TestClient, name: str) -> list[dict[str, Any]]:
    response = client.get(f"{API}/files/analyze/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return [json.loads(line) for line in response.text.split("\n") if line]


def test_stream_format(client: TestClient, measurements: Path) -> None:
    write_measurement(measurements / "m.hdf5", frames=2500)
    client.post(
        f"{API}/files/m.hdf5/embedded",
        files=[("files", ("hello.txt", b"hello!", "text/plain"))],
    )
    lines = lines_of(client, "m.hdf5")

    meta = lines[0]
    assert "name" not in meta and "progress" not in meta
    assert isinstance(meta["acceleration"]["attributes"]["conversion"], bool)
    assert meta["embedded_files"][0]["download_path"] == "files/m.hdf5/embedded/hello_txt"
    assert [s["name"] for s in meta["sensors"]] == [
        "Acceleration 100g",
        "Temperature",
        "Photodiode",
    ]

    chunks = lines[1:-1:2]
    progress = lines[2:-1:2]
    assert [len(c["counter"]) for c in chunks] == [1000, 1000, 500]  # every row
    assert progress == [{"progress": 0.4}, {"progress": 0.8}, {"progress": 1.0}]
    assert lines[-1] == {"progress": 1.0}

    rows = np.arange(2500)
    assert all(c["name"] == "m.hdf5" for c in chunks)
    assert [n for c in chunks for n in c["counter"]] == (rows % 256).tolist()
    timestamps = np.array([t for c in chunks for t in c["timestamp"]])
    np.testing.assert_allclose(timestamps, np.rint(rows / 3174.6 * 1e6))  # raw µs
    assert [d["name"] for d in chunks[0]["datasets"]] == ["x", "y", "z"]
    y = [value for c in chunks for value in c["datasets"][1]["data"]]
    # float32 values in their shortest form: exactly the stored value
    np.testing.assert_array_equal(np.array(y, dtype=np.float32), (rows + 0.1).astype(np.float32))


def test_single_channel_rows(client: TestClient, measurements: Path) -> None:
    write_measurement(measurements / "single.hdf5", frames=400, channels=("second",))
    lines = lines_of(client, "single.hdf5")
    chunks = lines[1:-1:2]
    assert [len(c["counter"]) for c in chunks] == [1000, 200]  # 1200 rows
    assert [d["name"] for d in chunks[0]["datasets"]] == ["y"]


def test_empty_table(client: TestClient, measurements: Path) -> None:
    write_measurement(measurements / "empty.hdf5", frames=0)
    lines = lines_of(client, "empty.hdf5")
    assert len(lines) == 2
    assert "acceleration" in lines[0]
    assert lines[1] == {"progress": 1.0}


def test_file_laid_out_like_icoapi_0_2_1_test_data(client: TestClient, measurements: Path) -> None:
    """counter uint32, timestamp float64 and a column named 'first' (as in the test
    file of MyTooliT ICOapi 0.2.1), an embedded file without attributes, no
    /sensors table."""
    with tables.open_file(measurements / "analyze.hdf5", mode="w") as h5:
        table = h5.create_table(
            "/",
            "acceleration",
            {
                "counter": tables.UInt32Col(pos=0),
                "timestamp": tables.Float64Col(pos=1),
                "first": tables.Float32Col(pos=2),
            },
        )
        table.append([(1, 0.5, float("nan")), (2, 1.5, 2.5)])
        table.attrs["pre_metadata"] = json.dumps({"version": "", "profile": "", "parameters": {}})
        group = h5.create_group("/", "embedded_files")
        h5.create_array(group, "hello_txt", obj=np.frombuffer(b"0123456789abcdef", np.uint8))
    lines = lines_of(client, "analyze.hdf5")
    assert lines[0]["embedded_files"] == [
        {
            "dataset_name": "hello_txt",
            "original_name": "hello_txt",
            "mime": "application/octet-stream",
            "size": 16,
            "download_path": "files/analyze.hdf5/embedded/hello_txt",
        }
    ]
    assert lines[0]["sensors"] == []
    assert lines[1] == {
        "name": "analyze.hdf5",
        "counter": [1, 2],
        "timestamp": [0.5, 1.5],
        "datasets": [{"name": "first", "data": [None, 2.5]}],  # NaN → null (valid JSON)
    }
    assert lines[2:] == [{"progress": 1.0}, {"progress": 1.0}]
