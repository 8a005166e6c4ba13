"""The dataspace password is registered with the log redactor at startup, so it
never reaches a log file even if something logs it. Built from the real parts
(ConfigService, SecretRedactor, a file handler) without a second app."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from icoapi.api import CONFIG_KINDS
from icoapi.configuration.service import ConfigService
from icoapi.core.events import EventBus
from icoapi.core.logging import SecretRedactor
from icoapi.core.paths import AppPaths
from icoapi.dataspace.config import mask_secrets, secret_fields, secret_values
from icoapi.dataspace.connectors.base import ConnectionSettings
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

    ConfigService(paths, CONFIG_KINDS, redactor, EventBus())

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
    dataspace = paths.config / "dataspace.yaml"

    # Missing: the service starts quietly, creates nothing and protects nothing.
    redactor = SecretRedactor()
    with warnings_of("icoapi") as records:
        ConfigService(paths, CONFIG_KINDS, redactor, EventBus())
    assert records == []
    assert not dataspace.exists()
    assert "plain-value" in log_through(redactor, tmp_path / "missing.log", "%s", "plain-value")

    # Broken: the service starts, says which file it could not read, and leaves
    # the file as it is for the operator to fix.
    broken = b"connection: [\n  password: half-written\n"
    dataspace.write_bytes(broken)
    redactor = SecretRedactor()
    with warnings_of("icoapi") as records:
        ConfigService(paths, CONFIG_KINDS, redactor, EventBus())
    [warning] = records
    assert warning.levelno == logging.WARNING
    assert str(dataspace) in warning.getMessage()
    assert dataspace.read_bytes() == broken


def test_secrets_follow_the_connector_declarations() -> None:
    s3 = {
        "connection": {
            "enabled": True,
            "connector": "s3",
            "bucket": "measurements",
            "access_key_id": "AKID-1",
            "secret_access_key": "s3-secret",
            "password": "not-an-s3-key",  # no S3 field: not a credential there
        }
    }
    assert secret_values(s3) == {"AKID-1", "s3-secret"}
    masked = mask_secrets(s3)["connection"]
    assert (masked["access_key_id"], masked["secret_access_key"]) == ("***", "***")
    assert (masked["bucket"], masked["password"]) == ("measurements", "not-an-s3-key")

    folder = {"connection": {"enabled": True, "connector": "folder", "path": "/mnt/share"}}
    assert secret_values(folder) == set()
    assert mask_secrets(folder) == folder

    # Disabled or naming no known connector: every connector's credentials.
    unknown = {"connection": {"enabled": False, "password": "p-1", "secret_access_key": "k-2"}}
    assert secret_values(unknown) == {"p-1", "k-2"}
    assert mask_secrets(unknown)["connection"] == {
        "enabled": False,
        "password": "***",
        "secret_access_key": "***",
    }


def test_a_new_connectors_secrets_are_its_secret_fields() -> None:
    class AzureConnection(ConnectionSettings):
        connector: Literal["azure"]
        account_key: SecretStr
        connection_string: SecretStr | None = None
        password_hint: str = ""  # a credential-like name, but not declared secret

    assert secret_fields(AzureConnection) == {"account_key", "connection_string"}
