"""Shared test fixtures: isolated environment and live servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from icoapi.api import create_app
from icoapi.core.settings import Settings
from icoapi.simulator import Simulator
from tests.support import (
    LiveServer,
    make_settings,
    simulator_of,
    simulator_options,
    simulator_settings,
)

# Variables of the service that a developer's shell may have set; tests must not
# depend on them.
SERVICE_VARIABLES = tuple(Settings.model_fields)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def live_app_factory() -> Iterator[Callable[[FastAPI], LiveServer]]:
    """Serves a given app on a real uvicorn server; stops them all afterwards."""
    servers: list[LiveServer] = []

    def start(app: FastAPI) -> LiveServer:
        server = LiveServer(app)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live_server_factory(
    tmp_path: Path, live_app_factory: Callable[[FastAPI], LiveServer]
) -> Callable[..., LiveServer]:
    def start(settings: Settings | None = None, **state: Any) -> LiveServer:
        return live_app_factory(create_app(settings or make_settings(tmp_path / "data"), **state))

    return start


@pytest.fixture
def sim_server_factory(
    tmp_path: Path, live_app_factory: Callable[[FastAPI], LiveServer]
) -> Callable[..., LiveServer]:
    """Start real uvicorn servers on the built-in simulator; keyword arguments
    override settings (e.g. shorter hardware timeouts)."""
    started = 0

    def start(**overrides: Any) -> LiveServer:
        nonlocal started
        data_dir = tmp_path / f"data{started or ''}"
        started += 1
        app = create_app(
            simulator_settings(data_dir, **overrides), can_bus_options=simulator_options()
        )
        return live_app_factory(app)

    return start


@pytest.fixture
def sim_server(sim_server_factory: Any, request: pytest.FixtureRequest) -> LiveServer:
    """A real uvicorn server whose CAN link is the built-in simulator; a test
    marked ``@pytest.mark.settings(NAME=value)`` gets those settings."""
    marker = request.node.get_closest_marker("settings")
    server: LiveServer = sim_server_factory(**(marker.kwargs if marker else {}))
    return server


@pytest.fixture
def client(sim_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{sim_server.url}/api/v1", timeout=60) as http:
        yield http


@pytest.fixture
def simulator(sim_server: LiveServer) -> Simulator:
    simulator = simulator_of(sim_server.app)
    assert simulator is not None
    return simulator
