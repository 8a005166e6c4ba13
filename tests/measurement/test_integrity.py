"""Recording integrity through the real API and the simulator: metadata of any
size, refused ADC values, long loss bursts, a device that ignores stop, names,
the file-finished event and data-loss messages."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tables
from websockets.sync.client import connect

from icoapi.core.events import Event, MeasurementFileFinished
from icoapi.hdf5.metadata import MAX_METADATA_BYTES, read_metadata
from icoapi.simulator import Simulator
from icoapi.simulator.protocol import Block, Streaming
from tests.measurement.helpers import (
    StreamRecorder,
    connect_device,
    instructions,
    measurement_file,
    read_table,
    start,
    wait_idle,
)
from tests.support import LiveServer

STOP_REQUEST = (Block.STREAMING, Streaming.DATA, 0x80)  # streaming format with 0 sets


def metadata_of(size: int) -> dict[str, Any]:
    return {"version": "1", "profile": "big", "parameters": {"notes": "ü" * (size // 2)}}


def stored_metadata(path: Path, prefix: str) -> Any:
    with tables.open_file(str(path), "r") as h5:
        return json.loads(read_metadata(h5, prefix) or "null")  # type: ignore[arg-type]


def test_metadata_of_one_megabyte_round_trips(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    pre = metadata_of(1024 * 1024)
    post = metadata_of(1024 * 1024 + 2)
    events: list[Event] = []
    sim_server.app.state.events.subscribe(events.append)
    name = start(client, instructions(mac, time=1, meta=pre, wait_for_post_meta=True))["data"][
        "name"
    ]
    path = measurement_file(sim_server, name)

    def post_meta_requested() -> bool:
        return any(type(event).__name__ == "PostMetaRequested" for event in events)

    assert simulator.wait_until(post_meta_requested, timeout=30)
    assert client.post("/measurement/post_meta", json=post).status_code == 200
    wait_idle(sim_server)
    rows, attributes, _ = read_table(path)
    assert len(rows) > 0.9 * 9524
    assert attributes["measurement_status"] == "completed"
    assert stored_metadata(path, "pre")["parameters"] == pre["parameters"]
    assert stored_metadata(path, "post")["parameters"] == post["parameters"]
    # The files API reads it back transparently and can replace it.
    meta = client.get(f"/files/analyze/meta/{path.name}").json()
    assert meta["acceleration"]["attributes"]["pre_metadata"]["parameters"] == pre["parameters"]
    response = client.post(f"/files/pre_meta/{path.name}", json=metadata_of(2 * 1024 * 1024))
    assert response.status_code == 200, response.text
    assert stored_metadata(path, "pre") == metadata_of(2 * 1024 * 1024)
    finished = [event for event in events if isinstance(event, MeasurementFileFinished)]
    assert finished == [MeasurementFileFinished(path, "completed")]


def test_metadata_over_the_limit_is_refused_before_anything_starts(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    huge = metadata_of(MAX_METADATA_BYTES)  # UTF-8 "ü" is 2 bytes: just over the limit
    response = client.post("/measurement/start", json=instructions(mac, meta=huge))
    assert response.status_code == 413
    assert "Metadata too large" in response.json()["detail"]
    assert client.get("/measurement").json()["running"] is False
    assert list(sim_server.app.state.paths.measurements.glob("*.hdf5")) == []
    assert client.post("/measurement/post_meta", json=huge).status_code == 413
    # A file to edit: a short measurement.
    name = start(client, instructions(mac, time=1))["data"]["name"]
    wait_idle(sim_server)
    path = measurement_file(sim_server, name)
    before = path.read_bytes()
    for prefix in ("pre", "post"):
        response = client.post(f"/files/{prefix}_meta/{path.name}", json=huge)
        assert response.status_code == 413
        assert "detail" in response.json()
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("acquisition_time", 1, "2, 3, 4, 8, 16, 32, 64, 128, 256"),
        ("oversampling_rate", 1, "2, 4, 8, 16"),
    ],
)
def test_adc_values_the_device_cannot_apply_are_refused(
    sim_server: LiveServer,
    client: httpx.Client,
    simulator: Simulator,
    key: str,
    value: int,
    allowed: str,
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    body = instructions(mac)
    body["adc"][key] = value
    before = client.get("/sth/read-adc").json()
    # The same rule for a measurement and for writing the ADC settings.
    for response, where in (
        (client.post("/measurement/start", json=body), ["body", "adc", key]),
        (client.put("/sth/write-adc", json={**before, key: value}), ["body", key]),
    ):
        assert response.status_code == 422
        (error,) = response.json()["detail"]
        assert error["loc"] == where
        assert allowed in error["msg"]
        assert "takes 1 as 'unset'" in error["msg"]
    assert client.get("/sth/read-adc").json() == before  # the device was not touched
    assert list(sim_server.app.state.paths.measurements.glob("*.hdf5")) == []


def test_loss_burst_longer_than_the_counter_is_counted_exactly(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    stream = StreamRecorder(f"{sim_server.ws_url}/api/v1/measurement/stream").start()
    device = simulator.device(mac)
    name = start(client, instructions(mac, time=None))["data"]["name"]

    def streaming() -> bool:
        return device.streamer is not None and device.streamer.frames_sent >= 3000

    assert simulator.wait_until(streaming, timeout=30)
    simulator.faults.drop_next(2000)
    assert simulator.wait_until(lambda: simulator.faults.pending_drops == 0, timeout=30)
    streamer = device.streamer
    assert streamer is not None
    sent_then = streamer.frames_sent
    assert simulator.wait_until(lambda: streamer.frames_sent >= sent_then + 3000, timeout=30)
    assert client.post("/measurement/stop").status_code == 200
    wait_idle(sim_server)
    stream.wait()
    rows, attributes, _ = read_table(measurement_file(sim_server, name))
    frames = len(rows) // 3
    assert streamer.frames_dropped == 2000
    assert attributes["lost_frames"] == 2000
    assert attributes["dataloss"] == pytest.approx(2000 / (2000 + frames))
    # The stream's final report is the file's; the periodic ones add up to the same.
    assert stream.dataloss[-1] == pytest.approx(attributes["dataloss"], rel=1e-5)
    assert stream.samples and len(stream.samples) == len(rows)
    # The gap is in the timestamps: 2001 frame periods between two rows.
    gaps = np.diff(rows["timestamp"].astype(np.int64))
    assert gaps.max() == pytest.approx(2001 * 1e6 / 3174.6, rel=0.01)


def test_device_that_ignores_stop_is_reported(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    simulator.faults.ignore = {STOP_REQUEST}
    stream = StreamRecorder(f"{sim_server.ws_url}/api/v1/measurement/stream").start()
    name = start(client, instructions(mac, time=1))["data"]["name"]
    wait_idle(sim_server)
    stream.wait()
    rows, attributes, _ = read_table(measurement_file(sim_server, name))
    assert len(rows) > 0.9 * 9524
    status = str(attributes["measurement_status"])
    assert status.startswith("error: the device did not stop streaming")
    # The device's data frames carry the stop answer's identifier, so the library
    # takes one for the answer: only the frames that keep coming show the truth.
    assert "frames arrived after the stop request" in status
    assert stream.errors and "did not stop streaming" in stream.errors[-1]["message"]
    last_error = client.get("/measurement").json()["last_error"]
    assert "did not stop streaming" in last_error
    simulator.faults.ignore = set()


def test_device_that_refuses_stop_then_stops_is_reported_truthfully(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    simulator.faults.error = {STOP_REQUEST}
    name = start(client, instructions(mac, time=1))["data"]["name"]
    wait_idle(sim_server)
    simulator.faults.error = set()
    _, attributes, _ = read_table(measurement_file(sim_server, name))
    status = str(attributes["measurement_status"])
    # An error answer is not "did not respond"; whether the device stopped is checked.
    assert "answered with an error" in status
    assert "did not answer" not in status


def test_name_with_spaces_and_umlauts_survives(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    status = start(client, instructions(mac, time=1, name="Fräsen Test Ü"))["data"]
    assert status["name"].startswith("Fräsen Test Ü__")
    wait_idle(sim_server)
    path = measurement_file(sim_server, status["name"])
    assert path.exists()
    names = [entry["name"] for entry in client.get("/files").json()["files"]]
    assert path.name in names
    assert client.get(f"/files/analyze/meta/{path.name}").status_code == 200


def test_dataloss_entries_are_their_own_messages(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    simulator.faults.drop_rate = 0.05
    messages: list[Any] = []
    with connect(f"{sim_server.ws_url}/api/v1/measurement/stream", max_size=None) as socket:
        done = threading.Event()

        def read() -> None:
            for text in socket:
                messages.append(json.loads(text))
            done.set()

        threading.Thread(target=read, daemon=True).start()
        start(client, instructions(mac, time=3))
        wait_idle(sim_server)
        assert done.wait(60)
    simulator.faults.drop_rate = 0.0
    arrays = [message for message in messages if isinstance(message, list)]
    loss_messages = [m for m in arrays if any(e["dataloss"] is not None for e in m)]
    assert len(loss_messages) >= 3
    assert all(len(message) == 1 for message in loss_messages)
    # The last message before the close is the final loss.
    assert arrays[-1][0]["dataloss"] is not None


def test_created_is_the_measurement_start(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    name = start(client, instructions(mac, time=1))["data"]["name"]
    wait_idle(sim_server)
    path = measurement_file(sim_server, name)
    _, attributes, _ = read_table(path)
    os.utime(path, (time.time() + 3600, time.time() + 3600))  # e.g. metadata edited later
    other = path.with_name("copied.hdf5")
    other.write_bytes(b"not hdf5")
    os.utime(other, (1_700_000_000, 1_700_000_000))
    files = {entry["name"]: entry for entry in client.get("/files").json()["files"]}
    assert files[path.name]["created"] == attributes["Start_Time"]
    assert files[path.name]["modified"] != files[path.name]["created"]
    assert files["copied.hdf5"]["created"] == datetime.fromtimestamp(1_700_000_000).isoformat()


def test_rate_the_data_does_not_have_is_reported(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    simulator.rate_multiplier = 1.5  # the device streams faster than its settings say
    name = start(client, instructions(mac, time=2))["data"]["name"]
    wait_idle(sim_server)
    simulator.rate_multiplier = 1.0
    _, attributes, _ = read_table(measurement_file(sim_server, name))
    status = str(attributes["measurement_status"])
    assert status.startswith("error: sample rate mismatch: the file states 9523.8 Hz")
    measured = float(status.split("show ")[1].split(" Hz")[0])
    assert measured == pytest.approx(1.5 * 9523.8, rel=0.02)


# The device is declared lost after 1 s of silence, not the default 5 s.
@pytest.mark.settings(CAN_STREAM_TIMEOUT=1.0)
def test_file_finished_after_a_failure(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    events: list[Event] = []
    sim_server.app.state.events.subscribe(events.append)
    simulator.faults.link_loss_after = 1.0
    name = start(client, instructions(mac, time=None))["data"]["name"]
    wait_idle(sim_server)
    simulator.faults.link_loss_after = None
    finished = [event for event in events if isinstance(event, MeasurementFileFinished)]
    assert len(finished) == 1
    assert finished[0].path == measurement_file(sim_server, name)
    assert "StreamingTimeoutError" in finished[0].status
    _, attributes, _ = read_table(finished[0].path)
    assert attributes["measurement_status"] == finished[0].status
