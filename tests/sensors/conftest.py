"""Fixtures of the sensor tests: one app per module (starting and stopping an
app costs about a second), with sensors.yaml reset before each test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from icoapi.api import create_app
from icoapi.core.settings import BUNDLED_CONFIG_DIR, Settings
from tests.support import make_settings

SERVICE_VARIABLES = tuple(Settings.model_fields)


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as patch:
        for name in SERVICE_VARIABLES:
            patch.delenv(name, raising=False)
        settings = make_settings(tmp_path_factory.mktemp("sensor-api"))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def api(shared_api: TestClient) -> TestClient:
    """The shared app with the shipped sensors.yaml."""
    config: Path = shared_api.app.state.paths.config  # type: ignore[attr-defined]
    shutil.copyfile(BUNDLED_CONFIG_DIR / "sensors.yaml", config / "sensors.yaml")
    return shared_api


@pytest.fixture
def sensors_file(api: TestClient) -> Path:
    path: Path = api.app.state.paths.config / "sensors.yaml"  # type: ignore[attr-defined]
    return path
