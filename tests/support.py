"""Helpers shared by the tests: isolated settings, typed access to a running
app's services and a real uvicorn server."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from icoapi.access.protection import uvicorn_options
from icoapi.configuration.service import ConfigService
from icoapi.core.events import EventBus
from icoapi.core.paths import AppPaths
from icoapi.core.settings import Settings, load_settings
from icoapi.dataspace.service import DataspaceService
from icoapi.files.service import MeasurementFileService
from icoapi.logs.service import LogService
from icoapi.measurement.service import MeasurementService
from icoapi.state.service import StateService
from icoapi.system.service import ICOSystem

# Variables of the service that a developer's shell may have set; tests must not
# depend on them.
SERVICE_VARIABLES = tuple(Settings.model_fields)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test app: its own data folder, no .env file, none of the
    service's environment variables (also outside a test, e.g. for an app a
    module shares), and (unless overridden) an in-process virtual CAN bus nobody
    answers on."""
    values: dict[str, Any] = {
        "ICOAPI_DATA_DIR": data_dir,
        "CAN_INTERFACE": "virtual",
        "CAN_CHANNEL": f"unused-{uuid.uuid4().hex}",
        "LOG_LEVEL": "DEBUG",
    }
    values.update(overrides)
    with pytest.MonkeyPatch.context() as patch:
        for name in SERVICE_VARIABLES:
            patch.delenv(name, raising=False)
        return load_settings(env_file=None, **values)


def app_of(client: TestClient) -> FastAPI:
    """The FastAPI app a test client drives."""
    app = client.app
    assert isinstance(app, FastAPI)
    return app


class AppServices:
    """Typed view of the services a running app keeps on ``app.state``."""

    def __init__(self, app: FastAPI | TestClient) -> None:
        self.app = app_of(app) if isinstance(app, TestClient) else app

    def _service[T](self, name: str, kind: type[T]) -> T:
        service = getattr(self.app.state, name)
        assert isinstance(service, kind), f"app.state.{name} is a {type(service).__name__}"
        return service

    @property
    def settings(self) -> Settings:
        return self._service("settings", Settings)

    @property
    def paths(self) -> AppPaths:
        return self._service("paths", AppPaths)

    @property
    def events(self) -> EventBus:
        return self._service("events", EventBus)

    @property
    def configs(self) -> ConfigService:
        return self._service("configs", ConfigService)

    @property
    def logs(self) -> LogService:
        return self._service("logs", LogService)

    @property
    def dataspace(self) -> DataspaceService:
        return self._service("dataspace", DataspaceService)

    @property
    def system(self) -> ICOSystem:
        return self._service("system", ICOSystem)

    @property
    def measurement(self) -> MeasurementService:
        return self._service("measurement", MeasurementService)

    @property
    def state(self) -> StateService:
        return self._service("state", StateService)

    @property
    def files(self) -> MeasurementFileService:
        return self._service("files", MeasurementFileService)

    @files.setter
    def files(self, service: MeasurementFileService) -> None:
        """Replace the file service (the routes look it up on each request)."""
        self.app.state.files = service


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """A real uvicorn server for an app, on a free loopback port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        # The server gets a socket that is already bound: no other test (in this
        # or another xdist worker) can take the port between choosing and binding.
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            ws_ping_interval=None,
            ws_per_message_deflate=app.state.settings.WEBSOCKET_COMPRESSION,
            **uvicorn_options(app.state.settings),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        # Poll the server's own flag: it turns true once the lifespan finished
        # and the socket listens.
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.socket.close()

    def run_in_loop(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the server's event loop (to reach services)."""
        loop = self.app.state.loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


def fast_simulator_config(**overrides: Any) -> Any:
    """The default simulated system with short scan and connect delays."""
    from icoapi.simulator import SimulatorConfig

    values: dict[str, Any] = {"scan_delay": 0.05, "connect_delay": 0.1, "seed": 7}
    values.update(overrides)
    return SimulatorConfig.default(**values)


def simulator_options(**overrides: Any) -> dict[str, Any]:
    """``can_bus_options`` of ``create_app`` for the simulator: its configuration
    (:func:`fast_simulator_config` with ``overrides``)."""
    return {"config": fast_simulator_config(**overrides)}


def simulator_of(app: FastAPI) -> Any:
    """The simulator behind an app's CAN link (while the link is open)."""
    from icoapi.simulator.plugin import simulator_on

    return simulator_on(app.state.system.link.channel)


ROOT = Path(__file__).resolve().parents[1]


def spawn_service(data_dir: Path, port: int, **environment: str) -> subprocess.Popen[bytes]:
    """``python -m icoapi`` of this checkout in a process of its own, on the
    simulator unless ``environment`` says otherwise, listening on loopback."""
    return subprocess.Popen(
        [sys.executable, "-m", "icoapi"],
        env={
            **os.environ,
            "CAN_INTERFACE": "simulator",
            "ICOAPI_DATA_DIR": str(data_dir),
            "VITE_API_HOSTNAME": "127.0.0.1",
            "VITE_API_PORT": str(port),
            # this checkout's icoapi, whatever the environment has installed
            "PYTHONPATH": str(ROOT),
            **environment,
        },
        cwd=data_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_service(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the service at ``url`` answers ``/health`` (it must not exit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "service exited"
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("service did not start")
