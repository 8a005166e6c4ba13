"""Fixtures of the configuration tests: one app per module (starting and
stopping an app costs about a second); the configuration folder is reset to the
shipped files, without backups, before each test.

Only one app may run at a time: each app installs its own log handlers on the
root logger, so a second app would take the log file away from the first."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from icoapi.api import CONFIG_FILE_NAMES, create_app
from icoapi.configuration.service import MAX_BACKUPS, ConfigService
from icoapi.core.paths import AppPaths
from icoapi.core.settings import Settings
from tests.support import make_settings

SERVICE_VARIABLES = tuple(Settings.model_fields)


def isolated_settings(data_dir: Path) -> Settings:
    with pytest.MonkeyPatch.context() as patch:
        for name in SERVICE_VARIABLES:
            patch.delenv(name, raising=False)
        return make_settings(data_dir)


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = isolated_settings(tmp_path_factory.mktemp("config-api"))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def api(shared_api: TestClient) -> TestClient:
    paths: AppPaths = shared_api.app.state.paths  # type: ignore[attr-defined]
    shutil.rmtree(paths.config)
    paths.ensure()
    paths.install_default_config(CONFIG_FILE_NAMES)
    configs: ConfigService = shared_api.app.state.configs  # type: ignore[attr-defined]
    configs.max_backups = MAX_BACKUPS
    return shared_api


@pytest.fixture
def paths(api: TestClient) -> AppPaths:
    result: AppPaths = api.app.state.paths  # type: ignore[attr-defined]
    return result
