"""A measurement that waits for post-measurement metadata: visible to every
client, re-requested from browsers that connect later, ended by Stop, and
explained to a Start that comes meanwhile."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import tables
from websockets.sync.client import ClientConnection, connect

from icoapi.simulator import Simulator
from tests.measurement.helpers import (
    connect_device,
    instructions,
    measurement_file,
    read_table,
    start,
    wait_idle,
)
from tests.support import LiveServer, simulator_of

POST = {"version": "0.0.1", "profile": "milling", "parameters": {"comment": "chatter at 2 s"}}


def receive(socket: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(socket.recv(timeout=30))
    return message


def receive_until(socket: ClientConnection, predicate: Any) -> list[dict[str, Any]]:
    """Messages up to and including the first that satisfies ``predicate``."""
    seen = []
    while True:
        message = receive(socket)
        seen.append(message)
        if predicate(message):
            return seen


def is_message(name: str) -> Any:
    return lambda message: message["message"] == name


def pending_of(message: dict[str, Any]) -> Any:
    return message["data"]["measurement_status"]["post_meta_pending"]


def is_pending_state(message: dict[str, Any]) -> bool:
    return message["message"] == "state" and pending_of(message) is not None


def messages_until_get_state(socket: ClientConnection) -> list[str]:
    """Everything the server queued for this client before it answers a
    ``get_state`` sent now (messages go out in order)."""
    socket.send(json.dumps({"message": "get_state"}))
    names = []
    while True:
        message = receive(socket)
        names.append(message["message"])
        if message["message"] == "state":
            return names


def start_waiting_measurement(
    client: httpx.Client, simulator: Simulator, state: ClientConnection
) -> str:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    name: str = start(client, instructions(mac, time=1, wait_for_post_meta=True))["data"]["name"]
    receive_until(state, is_message("post_meta_request"))
    return name


def test_pending_post_meta_is_visible_requested_again_and_blocks_start(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    url = f"{sim_server.ws_url}/api/v1/state"
    with connect(url) as first:
        name = start_waiting_measurement(client, simulator, first)
        file = f"{name}.hdf5"

        # The first browser sees the wait in a state push.
        pushed = receive_until(first, is_pending_state)[-1]
        assert pending_of(pushed)["file"] == file
        # ... and so does anyone asking over HTTP.
        status = client.get("/measurement").json()
        assert status["running"] is False
        pending = status["post_meta_pending"]
        assert (pending["name"], pending["file"]) == (name, file)
        since = datetime.fromisoformat(pending["since"])
        until = datetime.fromisoformat(pending["until"])
        assert (until - since).total_seconds() == sim_server.app.state.settings.POST_META_TIMEOUT
        assert client.get("/state").json()["measurement_status"]["post_meta_pending"] == pending

        # A browser opened now gets the state with the wait, then the request.
        with connect(url) as second:
            greeting = receive(second)
            assert greeting["message"] == "state"
            assert pending_of(greeting) == pending
            assert receive(second) == {"message": "post_meta_request", "data": None}

            # Start is refused with what is pending and how to finish it.
            again = instructions(simulator.config.devices[0].mac)
            refused = client.post("/measurement/start", json=again)
            assert refused.status_code == 409
            detail = refused.json()["detail"]
            assert file in detail
            assert pending["until"] in detail
            assert "POST /api/v1/measurement/post_meta" in detail
            assert "POST /api/v1/measurement/stop" in detail

            # The metadata from either browser finishes it; both dialogs close.
            assert client.post("/measurement/post_meta", json=POST).json() is None
            receive_until(first, is_message("post_meta_completed"))
            receive_until(second, is_message("post_meta_completed"))
        wait_idle(sim_server)

    with tables.open_file(str(measurement_file(sim_server, name))) as h5file:
        stored = json.loads(h5file.root.acceleration.attrs["post_metadata"])
    assert stored["parameters"] == POST["parameters"]
    assert client.get("/measurement").json()["post_meta_pending"] is None
    # A browser opened afterwards is not asked for anything.
    with connect(url) as late:
        greeting = receive(late)
        assert pending_of(greeting) is None
        assert messages_until_get_state(late) == ["state"]


def test_stop_finishes_without_post_meta(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    url = f"{sim_server.ws_url}/api/v1/state"
    mac = simulator.config.devices[0].mac
    with connect(url) as state:
        name = start_waiting_measurement(client, simulator, state)
        assert client.get("/measurement").json()["post_meta_pending"] is not None

        # Stop returns once the measurement is finished for good.
        assert client.post("/measurement/stop").json() is None
        status = client.get("/measurement").json()
        assert (status["running"], status["post_meta_pending"], status["name"]) == (
            False,
            None,
            None,
        )
        receive_until(state, is_message("post_meta_completed"))
        # Metadata that comes too late is not written anywhere.
        assert client.post("/measurement/post_meta", json=POST).json() is None

        # The next measurement starts at once.
        follow_up = start(client, instructions(mac, time=1))["data"]["name"]
        wait_idle(sim_server)

    rows, attributes, _ = read_table(measurement_file(sim_server, name))
    assert len(rows) > 0
    assert attributes["measurement_status"] == "completed"
    with tables.open_file(str(measurement_file(sim_server, name))) as h5file:
        names = h5file.root.acceleration.attrs._v_attrnamesuser
        assert "pre_metadata" in names
        assert "post_metadata" not in names
    assert measurement_file(sim_server, follow_up).is_file()


def test_timeout_closes_every_dialog(sim_server_factory: Any) -> None:
    server = sim_server_factory(POST_META_TIMEOUT=1.0)
    simulator = simulator_of(server.app)
    mac = simulator.config.devices[0].mac
    with (
        httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as http,
        connect(f"{server.ws_url}/api/v1/state") as state,
    ):
        connect_device(http, mac)
        body = instructions(mac, time=1, wait_for_post_meta=True, disconnect_after_measurement=True)
        name = start(http, body)["data"]["name"]
        seen = receive_until(state, is_message("post_meta_completed"))
        names = [message["message"] for message in seen]
        assert names.index("post_meta_request") < names.index("post_meta_completed")
        pending = [pending_of(m) for m in seen if is_pending_state(m)]
        assert pending and pending[0]["file"] == f"{name}.hdf5"
        wait_idle(server)
        status = http.get("/measurement").json()
        assert status["post_meta_pending"] is None
        # The file is complete without the metadata; the device was disconnected.
        assert read_table(measurement_file(server, name))[1]["measurement_status"] == "completed"
        assert http.get("/state").json()["link_state"] == "stu_connected"
