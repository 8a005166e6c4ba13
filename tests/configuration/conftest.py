"""Fixtures of the configuration tests, on the module's shared app (``api`` in
tests/conftest.py resets the configuration folder to the shipped files, without
backups, before each test)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from icoapi.core.paths import AppPaths
from tests.support import AppServices


@pytest.fixture
def paths(api: TestClient) -> AppPaths:
    return AppServices(api).paths
