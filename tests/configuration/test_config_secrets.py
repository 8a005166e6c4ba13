"""The dataspace password is registered with the log redactor at startup, so it
never reaches a log file even if something logs it. Built from the real parts
(ConfigService, SecretRedactor, a file handler) without a second app."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def warnings_of(name: str) -> Iterator[list[logging.LogRecord]]:
    """Warnings and worse of logger ``name``, captured at the logger itself (an
    app started earlier in this process may have stopped its propagation)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    level, disabled = logger.level, logger.disabled
    logger.setLevel(logging.WARNING)
    logger.disabled = False
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled


def test_startup_with_broken_or_missing_dataspace_file(tmp_path: Path) -> None:
    paths = AppPaths(root=tmp_path, log_file=tmp_path / "logs" / "icodaq.log")
    paths.ensure()
    catalog = SensorCatalog(paths.config / "sensors.yaml")
    dataspace = paths.config / "dataspace.yaml"

    # Missing: the service starts quietly, creates nothing and protects nothing.
    redactor = SecretRedactor()
    with warnings_of("icoapi") as records:
        ConfigService(paths, catalog, redactor, EventBus())
    assert records == []
    assert not dataspace.exists()
    assert "plain-value" in log_through(redactor, tmp_path / "missing.log", "%s", "plain-value")

    # Broken: the service starts, says which file it could not read, and leaves
    # the file as it is for the operator to fix.
    broken = b"connection: [\n  password: half-written\n"
    dataspace.write_bytes(broken)
    redactor = SecretRedactor()
    with warnings_of("icoapi") as records:
        ConfigService(paths, catalog, redactor, EventBus())
    [warning] = records
    assert warning.levelno == logging.WARNING
    assert str(dataspace) in warning.getMessage()
    assert dataspace.read_bytes() == broken


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
