"""A service killed with SIGKILL mid-measurement leaves a readable file, which the
next start completes from its journal and marks interrupted, also when the kill
lands among journal checkpoints (every 0.2 s: kills also hit one in progress)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import numpy as np
import pytest
import tables
from websockets.sync.client import connect

from icoapi.hdf5.journal import journal_path
from tests.measurement.helpers import instructions
from tests.support import free_port, spawn_service, wait_for_service


@pytest.mark.parametrize(
    ("checkpoint_seconds", "kill_after"), [("5", 2.5), ("0.2", 3.1), ("0.2", 3.77)]
)
def test_sigkill_leaves_readable_file(
    tmp_path: Path, checkpoint_seconds: str, kill_after: float
) -> None:
    port = free_port()
    process = spawn_service(tmp_path, port, ICOAPI_JOURNAL_CHECKPOINT_SECONDS=checkpoint_seconds)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_service(url, process)
        with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as http:
            mac = http.get("/sth").json()[0]["mac_address"]
            assert http.put("/sth/connect", json={"mac_address": mac}).status_code == 200
            with connect(f"ws://127.0.0.1:{port}/api/v1/measurement/stream") as stream:
                response = http.post("/measurement/start", json=instructions(mac, time=None))
                name = response.json()["data"]["name"]
                # Wait until 2.5 s or more of samples went out: the writer flushes
                # at least once a second, so more than 1 s of rows are on disk.
                newest = 0.0
                while newest < kill_after:
                    for entry in json.loads(stream.recv(timeout=30)):
                        if entry["timestamp"] is not None:
                            newest = max(newest, entry["timestamp"])
                process.send_signal(signal.SIGKILL)
                process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)

    path = tmp_path / "measurements" / f"{name}.hdf5"
    with tables.open_file(str(path), "r") as h5file:
        table = h5file.root.acceleration
        rows = table.nrows
        timestamps = table.col("timestamp")
        assert h5file.root.sensors.nrows == 1
    assert rows >= 9524 * 1.0
    assert timestamps[-1] >= 1_000_000
    assert journal_path(path).exists()

    # The next start recovers the file before it serves anything.
    process = spawn_service(tmp_path, port)
    try:
        wait_for_service(url, process)
        with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as http:
            attributes = http.get(f"/files/analyze/meta/{path.name}").json()["acceleration"][
                "attributes"
            ]
    finally:
        process.terminate()
        process.wait(30)
    assert not journal_path(path).exists()
    assert attributes["measurement_status"] == "interrupted"
    with tables.open_file(str(path), "r") as h5file:
        table = h5file.root.acceleration
        recovered_rows = table.nrows
        counters = table.col("counter")
    assert attributes["rows"] == recovered_rows >= rows
    # every frame up to newest (sent before the kill) is in the file
    assert recovered_rows >= kill_after * 9524 * 0.95
    frames = recovered_rows // 3
    assert (counters[::3] == np.arange(frames) % 256).all()
