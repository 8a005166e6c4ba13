"""Shared test fixtures: isolated environment, the app a test module shares
and live servers."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from icoapi.api import CONFIG_FILE_NAMES, create_app
from icoapi.configuration.service import MAX_BACKUPS
from icoapi.core.settings import Settings
from icoapi.simulator import Simulator
from tests.support import (
    SERVICE_VARIABLES,
    AppServices,
    LiveServer,
    make_settings,
    simulator_of,
    simulator_options,
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture(scope="module")
def shared_api_settings() -> dict[str, Any]:
    """Settings (beyond :func:`make_settings`) of the app a test module shares;
    a folder's conftest overrides this fixture to change them."""
    return {}


@pytest.fixture(scope="module")
def shared_api(
    tmp_path_factory: pytest.TempPathFactory, shared_api_settings: dict[str, Any]
) -> Iterator[TestClient]:
    """One running app per test module (starting and stopping an app costs about
    a second) on a data folder of its own. Prefer :func:`api`, which resets it.

    Only one app may run at a time: each app installs its own log handlers on the
    root logger, so a second app would take the log file away from the first."""
    settings = make_settings(tmp_path_factory.mktemp("shared-api"), **shared_api_settings)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def api(shared_api: TestClient) -> TestClient:
    """The module's shared app, reset before each test: the shipped
    configuration files without backups, and only the live log file."""
    services = AppServices(shared_api)
    paths = services.paths
    shutil.rmtree(paths.config)
    paths.ensure()
    paths.install_default_config(CONFIG_FILE_NAMES)
    services.configs.max_backups = MAX_BACKUPS
    for entry in paths.logs.iterdir():
        if entry.name == paths.log_file.name:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    shutil.rmtree(paths.root / "logs2", ignore_errors=True)
    return shared_api


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
            make_settings(data_dir, CAN_INTERFACE="simulator", **overrides),
            can_bus_options=simulator_options(),
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
