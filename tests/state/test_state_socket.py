"""The state WebSocket: pushes on each real change, tolerates garbage."""

from __future__ import annotations

import json
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from icoapi.simulator import Simulator
from tests.support import AppServices, LiveServer


def receive(socket: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(socket.recv(timeout=timeout))
    return message


def receive_until(
    socket: ClientConnection, predicate: Any, limit: int = 20
) -> list[dict[str, Any]]:
    seen = []
    for _ in range(limit):
        message = receive(socket)
        seen.append(message)
        if predicate(message):
            return seen
    raise AssertionError(f"condition not met in {seen}")


def device_of(message: dict[str, Any]) -> Any:
    return message["data"]["device"] if message["message"] == "state" else "n/a"


def test_state_push_sequence(sim_server: LiveServer, simulator: Simulator) -> None:
    url = f"{sim_server.ws_url}/api/v1/state"
    mac = simulator.config.devices[0].mac
    with (
        connect(url) as good,
        connect(url) as noisy,
        httpx.Client(base_url=f"{sim_server.url}/api/v1", timeout=60) as http,
    ):
        # Each client gets the current state on connect.
        for socket in (good, noisy):
            first = receive(socket)
            assert first["message"] == "state"
            assert first["data"]["link_state"] == "stu_connected"
            assert first["data"]["can_ready"] is True

        # Garbage gets an error message for the sender only, and breaks nothing.
        noisy.send("this is not json")
        error = receive(noisy)
        assert error["message"] == "error"
        assert "Invalid message" in error["data"]["detail"]
        noisy.send(json.dumps({"no_message_key": 1}))
        assert receive(noisy)["message"] == "error"
        noisy.send(json.dumps({"message": "local_storage_state", "data": {"x": 1}}))

        assert http.put("/sth/connect", json={"mac_address": mac}).status_code == 200
        for socket in (good, noisy):
            seen = receive_until(socket, lambda m: device_of(m) not in (None, "n/a"))
            # One push for the change, not a flood of intermediate states.
            assert [device_of(m) for m in seen].count(None) <= 1
            assert seen[-1]["data"]["link_state"] == "sensor_connected"
            assert seen[-1]["data"]["device"]["mac_address"] == mac

        # get_state answers the asking client.
        good.send(json.dumps({"message": "get_state"}))
        reply = receive(good)
        assert reply["message"] == "state"
        assert reply["data"]["device"]["mac_address"] == mac

        assert http.put("/sth/disconnect").status_code == 200
        for socket in (good, noisy):
            seen = receive_until(socket, lambda m: device_of(m) is None)
            assert seen[-1]["data"]["link_state"] == "stu_connected"

        # No duplicate push followed: the next message is the answer to get_state.
        noisy.send(json.dumps({"message": "get_state"}))
        assert device_of(receive(noisy)) is None


def test_dead_socket_is_dropped(sim_server: LiveServer, simulator: Simulator) -> None:
    url = f"{sim_server.ws_url}/api/v1/state"
    state = AppServices(sim_server.app).state
    dead = connect(url, legacy=True)  # closed by hand below, not by a with block
    receive(dead)
    dead.close()
    with (
        connect(url) as alive,
        httpx.Client(base_url=f"{sim_server.url}/api/v1", timeout=60) as http,
    ):
        receive(alive)
        mac = simulator.config.devices[0].mac
        assert http.put("/sth/connect", json={"mac_address": mac}).status_code == 200
        receive_until(alive, lambda m: device_of(m) not in (None, "n/a"))
        assert http.put("/sth/disconnect").status_code == 200
        receive_until(alive, lambda m: device_of(m) is None)
        assert len(state.clients) == 1
