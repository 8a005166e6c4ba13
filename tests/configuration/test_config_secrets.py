"""The dataspace password is registered with the log redactor at startup, so it
never reaches a log file even if something logs it. Built from the real parts
(ConfigService, SecretRedactor, a file handler) without a second app."""

from __future__ import annotations

import logging
from pathlib import Path

from icoapi.configuration.service import ConfigService, mask_secrets, secrets_in
from icoapi.core.events import EventBus
from icoapi.core.logging import SecretRedactor
from icoapi.core.paths import AppPaths
from icoapi.sensors.service import SensorCatalog
from tests.configuration.yaml_samples import dump, enabled_dataspace


def log_through(redactor: SecretRedactor, log_file: Path, message: str, *args: object) -> str:
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.addFilter(redactor)
    logger = logging.getLogger("icoapi.test.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
        handler.close()
    return log_file.read_text(encoding="utf-8")


def test_startup_registers_dataspace_password(tmp_path: Path) -> None:
    paths = AppPaths(root=tmp_path, log_file=tmp_path / "logs" / "icodaq.log")
    paths.ensure()
    password = "startup-only-secret"
    (paths.config / "dataspace.yaml").write_bytes(dump(enabled_dataspace(password)))
    redactor = SecretRedactor()

    ConfigService(paths, SensorCatalog(paths.config / "sensors.yaml"), redactor, EventBus())

    text = log_through(redactor, paths.log_file, "connecting as operator with %s", password)
    assert password not in text
    assert "connecting as operator with ***" in text  # the user name is not a secret


def test_startup_with_broken_or_missing_dataspace_file(tmp_path: Path) -> None:
    paths = AppPaths(root=tmp_path, log_file=tmp_path / "logs" / "icodaq.log")
    paths.ensure()
    catalog = SensorCatalog(paths.config / "sensors.yaml")
    ConfigService(paths, catalog, SecretRedactor(), EventBus())  # missing: no error
    (paths.config / "dataspace.yaml").write_text("connection: [", "utf-8")
    ConfigService(paths, catalog, SecretRedactor(), EventBus())  # broken: no error


def test_secret_keys_are_found_at_any_depth() -> None:
    document = {
        "connection": {"password": "a-pass", "username": "bob", "port": 1},
        "more": [{"api_key": "k-123"}, {"token": 123456}, {"passwd": None}],
        "client_secret": "s-xyz",
    }
    assert secrets_in(document) == {"a-pass", "k-123", "123456", "s-xyz"}
    assert mask_secrets(document) == {
        "connection": {"password": "***", "username": "bob", "port": 1},
        "more": [{"api_key": "***"}, {"token": "***"}, {"passwd": None}],
        "client_secret": "***",
    }
