"""Starting, stopping, failures, slow clients, post-metadata and IFT."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import numpy as np
import pytest
import tables
from websockets.sync.client import connect

from icoapi.simulator import Simulator
from tests.measurement.helpers import (
    StreamRecorder,
    connect_device,
    instructions,
    measurement_file,
    read_table,
    start,
    wait_idle,
)
from tests.support import LiveServer, simulator_of

INCORRECT_STATE = {"detail": "Incorrect request for current ICOtronic system state."}


def test_stop_during_run(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    name = start(client, instructions(mac, time=None))["data"]["name"]
    device = simulator.device(mac)

    def streamed_enough() -> bool:
        streamer = device.streamer
        return streamer is not None and streamer.frames_sent >= 3000

    assert simulator.wait_until(streamed_enough, timeout=30)
    assert client.get("/measurement").json()["running"] is True
    assert client.post("/measurement/stop").json() is None
    # stop returns once the data is in the (closed) file.
    rows, attributes, _ = read_table(measurement_file(sim_server, name))
    assert len(rows) >= 3000 * 3
    assert attributes["measurement_status"] == "stopped"
    wait_idle(sim_server)
    assert client.get("/measurement").json()["running"] is False
    assert client.get("/state").json()["link_state"] == "sensor_connected"
    # Stop with nothing running answers null at once.
    assert client.post("/measurement/stop").json() is None


def test_status_summarises_the_metadata(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    picture = "data:image/png;base64," + "A" * (3 * 1024 * 1024)
    meta = {"version": "1", "profile": "milling", "parameters": {"photo": picture, "depth": 2}}
    start(client, instructions(mac, time=None, meta=meta))
    try:
        response = client.get("/measurement")
        status = response.json()
        assert status["running"] is True
        # Like the state pushes: names, not values (the pictures are in the file).
        assert status["instructions"]["meta"] == {
            "version": "1",
            "profile": "milling",
            "parameter_names": ["photo", "depth"],
        }
        assert status["instructions"]["mac_address"] == mac
        assert len(response.content) < 4096
        state = client.get("/state").json()["measurement_status"]
        assert state["instructions"] == status["instructions"]
    finally:
        assert client.post("/measurement/stop").status_code == 200


def test_operations_refused_while_measuring(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    start(client, instructions(mac, time=None))
    adc = {"prescaler": 2, "acquisition_time": 8, "oversampling_rate": 64, "reference_voltage": 3.3}
    refused = [
        client.put("/sth/rename", json={"mac_address": mac, "new_name": "Other"}),
        client.put("/sth/write-adc", json=adc),
        client.put("/sth/disconnect"),
        client.put("/stu/reset"),
        client.put("/reset-can"),
        client.post("/measurement/start", json=instructions(mac)),
    ]
    for response in refused:
        assert response.status_code == 400, response.text
    assert refused[2].json() == INCORRECT_STATE
    assert client.get("/state").json()["link_state"] == "measuring"
    assert client.get("/stu/connected").json() is True
    client.post("/measurement/stop")
    wait_idle(sim_server)


def test_start_errors(sim_server: LiveServer, client: httpx.Client, simulator: Simulator) -> None:
    mac = simulator.config.devices[0].mac
    # Nothing connected.
    response = client.post("/measurement/start", json=instructions(mac))
    assert (response.status_code, response.json()) == (400, INCORRECT_STATE)
    missing = client.post("/measurement/start")
    assert missing.status_code == 422
    assert missing.json() == {
        "detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    }
    connect_device(client, mac)
    other = simulator.config.devices[1].mac
    wrong_device = client.post("/measurement/start", json=instructions(other))
    assert wrong_device.status_code == 400
    assert other in wrong_device.json()["detail"]
    for body in (
        instructions(mac, adc=None),
        instructions(mac, time=1.5),
        instructions(mac, first={"channel_number": 0, "sensor_id": None}),
        instructions(mac, first={"channel_number": 1, "sensor_id": "no_such_sensor"}),
        instructions(mac, ift_requested=True, ift_channel="second"),
        instructions(mac, ift_requested=True, ift_window_width=2000),
        instructions(mac, first={"channel_number": 300, "sensor_id": None}),
    ):
        response = client.post("/measurement/start", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"]
    # Nothing was started or left behind by the refused requests.
    assert client.get("/measurement").json()["running"] is False
    assert client.get("/state").json()["link_state"] == "sensor_connected"


def test_unsupported_channel_mapping(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    simulator.device(mac).supports_channel_mapping = False
    connect_device(client, mac)
    body = instructions(mac, first={"channel_number": 2, "sensor_id": None})
    response = client.post("/measurement/start", json=body)
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "Unsupported STH sensor configuration."},
    )
    assert client.get("/state").json()["link_state"] == "sensor_connected"


def test_concurrent_starts(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=f"{sim_server.url}/api/v1", timeout=60) as http:
            body = instructions(mac, time=1)
            return list(
                await asyncio.gather(
                    *[http.post("/measurement/start", json=body) for _ in range(8)]
                )
            )

    responses = asyncio.run(race())
    assert sorted(r.status_code for r in responses) == [200] + [400] * 7
    wait_idle(sim_server)
    files = list(sim_server.app.state.paths.measurements.glob("*.hdf5"))
    assert len(files) == 1


def test_dataloss_under_drops(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    simulator.faults.drop_rate = 0.10
    stream = StreamRecorder(f"{sim_server.ws_url}/api/v1/measurement/stream").start()
    name = start(client, instructions(mac, time=4))["data"]["name"]
    wait_idle(sim_server)
    stream.wait()
    simulator.faults.drop_rate = 0.0
    _, attributes, _ = read_table(measurement_file(sim_server, name))
    assert abs(float(attributes["dataloss"]) - 0.10) < 0.01
    # The final loss on the stream is the file's.
    assert stream.dataloss[-1] == pytest.approx(float(attributes["dataloss"]), abs=1e-6)
    # Periodic reports came in between (at least one per second).
    assert len(stream.dataloss) >= 4
    assert all(0.05 < loss < 0.15 for loss in stream.dataloss[:-1])


# The device is declared lost after 1 s of silence, not the default 5 s.
@pytest.mark.settings(CAN_STREAM_TIMEOUT=1.0)
def test_link_loss_mid_run(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    simulator.faults.link_loss_after = 1.0
    stream = StreamRecorder(f"{sim_server.ws_url}/api/v1/measurement/stream").start()
    name = start(client, instructions(mac, time=None))["data"]["name"]
    stream.wait(timeout=60)
    wait_idle(sim_server)
    simulator.faults.link_loss_after = None
    rows, attributes, _ = read_table(measurement_file(sim_server, name))
    # About one second of data made it to the file, and the file says what happened.
    assert len(rows) > 0.8 * 9524
    assert "StreamingTimeoutError" in str(attributes["measurement_status"])
    assert stream.errors and stream.errors[-1]["type"] == "StreamingTimeoutError"
    assert stream.closed_normally
    state = client.get("/state").json()
    assert state["measurement_status"]["running"] is False
    assert "StreamingTimeoutError" in state["measurement_status"]["last_error"]
    assert state["link_state"] == "stu_connected"  # the device is gone
    # The service is usable: connect again and measure.
    connect_device(client, mac)
    start(client, instructions(mac, time=1))
    wait_idle(sim_server)


def test_slow_client_does_not_slow_others(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    url = f"{sim_server.ws_url}/api/v1/measurement/stream"
    readers = [StreamRecorder(url).start() for _ in range(4)]
    stalled = StreamRecorder(url, read=False)  # connected, never reads
    name = start(client, instructions(mac, time=4))["data"]["name"]
    wait_idle(sim_server)
    for reader in readers:
        reader.wait()
    rows, attributes, _ = read_table(measurement_file(sim_server, name))
    assert float(attributes["dataloss"]) == 0
    for reader in readers:
        assert len(reader.samples) == len(rows)
        assert reader.closed_normally
    stalled.close()


def test_post_meta(sim_server: LiveServer, client: httpx.Client, simulator: Simulator) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    with connect(f"{sim_server.ws_url}/api/v1/state") as state_socket:
        name = start(client, instructions(mac, time=1, wait_for_post_meta=True))["data"]["name"]
        # The request comes on the state socket once the stream has ended.
        seen = []
        while True:
            message = state_socket.recv(timeout=30)
            seen.append(message)
            if '"post_meta_request"' in message:
                break
        # A new measurement cannot start until the file is finished.
        blocked = client.post("/measurement/start", json=instructions(mac, time=1))
        assert blocked.status_code == 409
        post = {
            "version": "0.0.1",
            "profile": "test",
            "parameters": {"comment": "fine", "depth": {"value": 2.5, "unit": "mm"}},
        }
        assert client.post("/measurement/post_meta", json=post).json() is None
        while '"post_meta_completed"' not in state_socket.recv(timeout=30):
            pass
    wait_idle(sim_server)
    with tables.open_file(str(measurement_file(sim_server, name))) as h5file:
        stored = json.loads(h5file.root.acceleration.attrs["post_metadata"])
    assert stored["parameters"]["comment"] == "fine"
    assert stored["parameters"]["depth"] == {"value": 2.5, "unit": "mm"}


def test_post_meta_timeout(sim_server_factory: Any) -> None:
    server = sim_server_factory(POST_META_TIMEOUT=0.5)
    simulator = simulator_of(server.app)
    mac = simulator.config.devices[0].mac
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as http:
        connect_device(http, mac)
        name = start(http, instructions(mac, time=1, wait_for_post_meta=True))["data"]["name"]
        wait_idle(server)
        # Without metadata the file is finished anyway, and the next start works.
        with tables.open_file(str(measurement_file(server, name))) as h5file:
            attributes = h5file.root.acceleration.attrs
            assert "post_metadata" not in attributes._v_attrnamesuser
            assert "pre_metadata" in attributes._v_attrnamesuser
        start(http, instructions(mac, time=1))
        wait_idle(server)


def test_ift_value(sim_server: LiveServer, client: httpx.Client, simulator: Simulator) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    stream = StreamRecorder(f"{sim_server.ws_url}/api/v1/measurement/stream").start()
    start(client, instructions(mac, time=2, ift_requested=True, ift_channel="first"))
    wait_idle(sim_server)
    stream.wait()
    assert stream.ift is not None
    assert len(stream.ift) >= 1.9 * 9524
    xs = np.array([point["x"] for point in stream.ift])
    assert np.all(np.diff(xs) >= 0)
    assert all(point["y"] >= 0 for point in stream.ift)


def test_start_without_writable_folder(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    folder = sim_server.app.state.paths.measurements
    folder.rmdir()
    folder.write_text("not a folder")  # the measurement file cannot be created
    try:
        response = client.post("/measurement/start", json=instructions(mac, time=1))
        assert response.status_code == 500
        assert response.json()["detail"].startswith("Cannot create the measurement file")
        # Nothing is left running; the device is free again.
        assert client.get("/state").json()["link_state"] == "sensor_connected"
        assert client.get("/measurement").json()["running"] is False
    finally:
        folder.unlink()
        folder.mkdir()
    start(client, instructions(mac, time=1))
    wait_idle(sim_server)
