"""Fixtures of the sensor tests, on the module's shared app (``api`` in
tests/conftest.py restores the shipped sensors.yaml before each test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support import AppServices


@pytest.fixture
def sensors_file(api: TestClient) -> Path:
    return AppServices(api).paths.config / "sensors.yaml"
