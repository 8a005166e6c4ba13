"""Fixtures of the log tests: one app per module (starting and stopping an app
costs about a second); the log folder keeps only the live log file between tests.

Only one app may run at a time: each app installs its own log handlers on the
root logger, so a second app would take the log file away from the first."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from icoapi.api import create_app
from icoapi.core.paths import AppPaths
from icoapi.core.settings import Settings
from tests.support import make_settings

SERVICE_VARIABLES = tuple(Settings.model_fields)


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as patch:
        for name in SERVICE_VARIABLES:
            patch.delenv(name, raising=False)
        settings = make_settings(
            tmp_path_factory.mktemp("log-api"), LOG_BACKUP_COUNT=4, LOG_MAX_BYTES=2 * 1024 * 1024
        )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def api(shared_api: TestClient) -> TestClient:
    paths: AppPaths = shared_api.app.state.paths  # type: ignore[attr-defined]
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
def log_dir(api: TestClient) -> Path:
    folder: Path = api.app.state.paths.logs  # type: ignore[attr-defined]
    return folder
