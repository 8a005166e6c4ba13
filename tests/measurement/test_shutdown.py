"""SIGTERM during a measurement: stream clients get every sample the file gets,
then the final loss, then a normal close."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import tables
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

from tests.measurement.helpers import instructions
from tests.support import free_port, spawn_service, wait_for_service


def test_sigterm_delivers_every_sample(tmp_path: Path) -> None:
    port = free_port()
    process = spawn_service(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    samples = 0
    last_entries: list[dict[str, object]] = []
    closed_normally = False
    try:
        wait_for_service(url, process)
        with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as http:
            mac = http.get("/sth").json()[0]["mac_address"]
            assert http.put("/sth/connect", json={"mac_address": mac}).status_code == 200
            with connect(f"ws://127.0.0.1:{port}/api/v1/measurement/stream") as stream:
                response = http.post("/measurement/start", json=instructions(mac, time=None))
                name = response.json()["data"]["name"]
                signalled = False
                try:
                    while True:
                        entries = json.loads(stream.recv(timeout=30))
                        last_entries = entries
                        for entry in entries:
                            if entry["first"] is not None:
                                samples += 1
                        if not signalled and samples >= 2 * 9524:
                            process.send_signal(signal.SIGTERM)
                            signalled = True
                except ConnectionClosedOK:
                    closed_normally = True
        # uvicorn re-raises the signal once it has shut down cleanly
        assert process.wait(60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    with tables.open_file(str(tmp_path / "measurements" / f"{name}.hdf5"), "r") as h5file:
        table = h5file.root.acceleration
        rows = table.nrows
        status = table.attrs["measurement_status"]
        dataloss = float(table.attrs["dataloss"])
    assert status == "stopped"
    assert samples == rows
    assert closed_normally
    assert len(last_entries) == 1 and last_entries[0]["dataloss"] == dataloss
