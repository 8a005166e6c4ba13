"""Fixtures of the files tests: the module's shared app with a file service on
each test's own folder, and real measurement files written with
MeasurementWriter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from icoapi.files.service import MeasurementFileService
from tests.files.helpers import write_measurement
from tests.support import AppServices


@pytest.fixture
def measurements(tmp_path: Path) -> Path:
    directory = tmp_path / "measurements"
    directory.mkdir()
    return directory


@pytest.fixture
def client(shared_api: TestClient, measurements: Path) -> TestClient:
    """The module's shared app with a file service on this test's own
    measurement folder."""
    services = AppServices(shared_api)
    assert isinstance(services.files, MeasurementFileService)
    services.files = MeasurementFileService(measurements, lambda: set())
    return shared_api


@pytest.fixture
def use_service(client: TestClient, measurements: Path) -> Callable[..., None]:
    """Replace the app's file service (e.g. with files in use or lower limits)."""

    def use(in_use: set[str] | None = None, **limits: Any) -> None:
        AppServices(client).files = MeasurementFileService(
            measurements, lambda: set(in_use or ()), **limits
        )

    return use


@pytest.fixture
def measurement(measurements: Path) -> Path:
    return write_measurement(measurements / "measurement.hdf5")
