"""Fixtures of the files tests: the app on a temporary data folder and real
measurement files written with MeasurementWriter."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from icoapi.api import create_app
from icoapi.core.settings import load_settings
from icoapi.files.service import MeasurementFileService
from tests.files.helpers import write_measurement


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One running app per test module (its lifespan builds all services)."""
    settings = load_settings(
        env_file=None,
        ICOAPI_DATA_DIR=tmp_path_factory.mktemp("data"),
        CAN_INTERFACE="virtual",
        CAN_CHANNEL=f"unused-{uuid.uuid4().hex}",
    )
    with TestClient(create_app(settings)) as client:
        assert isinstance(client.app.state.files, MeasurementFileService)  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def measurements(tmp_path: Path) -> Path:
    directory = tmp_path / "measurements"
    directory.mkdir()
    return directory


@pytest.fixture
def client(app_client: TestClient, measurements: Path) -> TestClient:
    """The app with a file service on this test's own measurement folder."""
    app_client.app.state.files = MeasurementFileService(  # type: ignore[attr-defined]
        measurements, lambda: set()
    )
    return app_client


@pytest.fixture
def use_service(client: TestClient, measurements: Path) -> Callable[..., None]:
    """Replace the app's file service (e.g. with files in use or lower limits)."""

    def use(in_use: set[str] | None = None, **limits: Any) -> None:
        client.app.state.files = MeasurementFileService(  # type: ignore[attr-defined]
            measurements, lambda: set(in_use or ()), **limits
        )

    return use


@pytest.fixture
def measurement(measurements: Path) -> Path:
    return write_measurement(measurements / "measurement.hdf5")
