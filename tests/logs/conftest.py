"""Fixtures of the log tests, on the module's shared app (``api`` in
tests/conftest.py keeps only the live log file between tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import AppServices


@pytest.fixture(scope="module")
def shared_api_settings() -> dict[str, Any]:
    return {"LOG_BACKUP_COUNT": 4, "LOG_MAX_BYTES": 2 * 1024 * 1024}


@pytest.fixture
def log_dir(api: TestClient) -> Path:
    return AppServices(api).paths.logs
