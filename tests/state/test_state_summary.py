"""State pushes and answers carry a summary of the instructions, not the
metadata values: a picture in the metadata does not ride along on every push."""

from __future__ import annotations

import base64
import json
import os

import httpx
from websockets.sync.client import connect

from icoapi.simulator import Simulator
from tests.measurement.helpers import instructions
from tests.support import LiveServer

PICTURE = "data:image/png;base64," + base64.b64encode(os.urandom(150_000)).decode()


def _instructions(mac: str) -> dict[str, object]:
    meta = {
        "version": "0.0.1",
        "profile": "milling",
        "parameters": {"person": "Ada", "pictures": {"0": PICTURE}},
    }
    return instructions(mac, name="summary", time=None, meta=meta)


def test_state_carries_an_instructions_summary(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    assert client.put("/sth/connect", json={"mac_address": mac}).status_code == 200
    with connect(f"{sim_server.ws_url}/api/v1/state", open_timeout=10) as socket:
        assert json.loads(socket.recv(timeout=10))["data"]["measuring"] is False
        started = client.post("/measurement/start", json=_instructions(mac))
        assert started.status_code == 200, started.text
        try:
            while True:  # the push that announces the running measurement
                pushed = str(socket.recv(timeout=30))
                push = json.loads(pushed)
                if push["message"] == "state" and push["data"]["measurement_status"]["running"]:
                    break
            socket.send(json.dumps({"message": "get_state"}))
            answer = str(socket.recv(timeout=30))
            snapshot = client.get("/state")
        finally:
            assert client.post("/measurement/stop").status_code == 200
    for text in (pushed, answer, snapshot.text):
        assert len(text) < 10_000
        assert PICTURE[40:80] not in text
        status = json.loads(text)
        status = status.get("data", status)["measurement_status"]
        meta = status["instructions"]["meta"]
        assert meta == {
            "version": "0.0.1",
            "profile": "milling",
            "parameter_names": ["person", "pictures"],
        }
        assert status["instructions"]["mac_address"] == mac
