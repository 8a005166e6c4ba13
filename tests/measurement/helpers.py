"""Helpers for measurement tests: instructions, stream readers, waiting."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import tables
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support import LiveServer

DISABLED = {"channel_number": 0, "sensor_id": None}


def instructions(mac: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "test",
        "mac_address": mac,
        "time": 3,
        "first": {"channel_number": 1, "sensor_id": "acc100g_01"},
        "second": DISABLED,
        "third": DISABLED,
        "ift_requested": False,
        "ift_channel": "first",
        "ift_window_width": 50,
        "adc": {
            "prescaler": 2,
            "acquisition_time": 8,
            "oversampling_rate": 64,
            "reference_voltage": 3.3,
        },
        "meta": {"version": "0.0.1", "profile": "test", "parameters": {}},
        "wait_for_post_meta": False,
        "disconnect_after_measurement": False,
    }
    body.update(overrides)
    return body


@dataclass
class StreamRecorder:
    """Reads a measurement stream socket in a thread until the server closes it."""

    url: str
    read: bool = True
    samples: list[dict[str, Any]] = field(default_factory=list)
    dataloss: list[float] = field(default_factory=list)
    ift: list[dict[str, float]] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0
    closed_normally: bool = False
    socket: ClientConnection | None = None

    def __post_init__(self) -> None:
        # A client that never reads cannot take the server's close frame from
        # behind the data it did not read: its close gives up quickly rather than
        # after the library's 10 s.
        self.socket = connect(
            self.url, max_size=None, close_timeout=10 if self.read else 0.5, legacy=True
        )
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> StreamRecorder:
        if self.read:
            self.thread.start()
        return self

    def _run(self) -> None:
        assert self.socket is not None
        try:
            for text in self.socket:
                self.messages += 1
                payload = json.loads(text)
                if isinstance(payload, dict):
                    self.errors.append(payload)
                    continue
                for entry in payload:
                    if entry["dataloss"] is not None:
                        self.dataloss.append(entry["dataloss"])
                    elif entry["ift"] is not None:
                        self.ift = entry["ift"]
                    else:
                        self.samples.append(entry)
            self.closed_normally = True
        except ConnectionClosed:
            pass
        finally:
            self.done.set()

    def wait(self, timeout: float = 60) -> StreamRecorder:
        assert self.done.wait(timeout), "stream did not end"
        return self

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()


def connect_device(http: httpx.Client, mac: str) -> None:
    response = http.put("/sth/connect", json={"mac_address": mac})
    assert response.status_code == 200, response.text


def start(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/measurement/start", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def wait_idle(server: LiveServer, timeout: float = 60) -> None:
    """Wait until the measurement's file is closed and the service is idle."""
    server.run_in_loop(server.app.state.measurement.wait_idle(timeout), timeout + 5)


def measurement_file(server: LiveServer, name: str) -> Path:
    path: Path = server.app.state.paths.measurements / f"{name}.hdf5"
    return path


def read_table(path: Path) -> tuple[Any, dict[str, Any], Any]:
    with tables.open_file(str(path), "r") as h5file:
        table = h5file.root.acceleration
        rows = table.read()
        attributes = {name: table.attrs[name] for name in table.attrs._v_attrnamesuser}
        sensors = h5file.root.sensors.read()
    return rows, attributes, sensors
