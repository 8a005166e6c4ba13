"""The app factory, lifespan, folders, default configuration and logging."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from icoapi.api import CONFIG_FILE_NAMES, create_app
from icoapi.core.logging import setup_logging
from icoapi.core.paths import AppPaths
from icoapi.core.settings import BUNDLED_CONFIG_DIR
from tests.support import LiveServer, make_settings


def test_startup_creates_folders_and_installs_default_config(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with TestClient(create_app(make_settings(data))):
        for folder in ("measurements", "config", "config/backup", "logs"):
            assert (data / folder).is_dir()
        for name in CONFIG_FILE_NAMES:
            assert (data / "config" / name).read_bytes() == (BUNDLED_CONFIG_DIR / name).read_bytes()


def test_default_config_never_overwrites_user_files(tmp_path: Path) -> None:
    paths = AppPaths(root=tmp_path, log_file=tmp_path / "logs" / "x.log")
    paths.ensure()
    user_file = paths.config / "sensors.yaml"
    user_file.write_text("mine: true\n")
    copied = paths.install_default_config(CONFIG_FILE_NAMES)
    assert user_file.read_text() == "mine: true\n"
    assert user_file not in copied
    assert {path.name for path in copied} == {"metadata.yaml", "dataspace.yaml"}
    # Second start: nothing left to copy.
    assert paths.install_default_config(CONFIG_FILE_NAMES) == []


def test_health_and_state_without_can(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", CAN_INTERFACE="socketcan", CAN_CHANNEL="nocan9")
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/health").json()["status"] == "ok"
        state = client.get("/api/v1/state").json()
        assert state["can_ready"] is False
        assert state["link_state"] == "disconnected"
        assert "nocan9" in state["link_error"] or state["link_error"]
        assert state["measurement_status"]["running"] is False
        response = client.get("/api/v1/stu")
        assert response.status_code == 503
        assert "CAN link is not available" in response.json()["detail"]
        assert client.get("/api/v1/stu/connected").json() is False


def test_logging_writes_rotating_file_without_duplicate_handlers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", LOG_MAX_BYTES=2048, LOG_BACKUP_COUNT=2)
    log_file = settings.log_file
    for _ in range(2):  # set up twice, as tests that create the app twice do
        setup_logging(settings, log_file)
    root = logging.getLogger()
    file_handlers = [h for h in root.handlers if isinstance(h, RotatingFileHandler)]
    assert len(file_handlers) == 1
    logger = logging.getLogger("icoapi.test.rotation")
    for index in range(200):
        logger.info("line %03d %s", index, "x" * 40)
    assert log_file.exists()
    assert log_file.with_name(log_file.name + ".1").exists()
    assert log_file.with_name(log_file.name + ".2").exists()
    assert not log_file.with_name(log_file.name + ".3").exists()
    assert log_file.stat().st_size <= 2048 + 200
    assert "line 199" in log_file.read_text()


def test_json_logging(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", LOG_USE_JSON=True)
    setup_logging(settings, settings.log_file)
    logging.getLogger("icoapi.test.json").warning("hello %s", "json")
    last = settings.log_file.read_text().strip().splitlines()[-1]
    entry = json.loads(last)
    assert entry["message"] == "hello json"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "icoapi.test.json"


def test_secret_redaction(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    redactor, _ = setup_logging(settings, settings.log_file)
    redactor.register(["hunter2-secret"])
    logging.getLogger("icoapi.test").warning("password is %s", "hunter2-secret")
    text = settings.log_file.read_text()
    assert "hunter2-secret" not in text
    assert "password is ***" in text


def test_real_uvicorn_serves_docs_and_openapi(tmp_path: Path) -> None:
    server = LiveServer(create_app(make_settings(tmp_path / "data")))
    server.start()
    try:
        docs = httpx.get(f"{server.url}/docs", timeout=10)
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
        assert spec["info"]["title"] == "ICOapi"
        assert spec["info"]["version"]
        assert {tag["name"] for tag in spec["tags"]} >= {"General", "Measurement"}
        assert "/api/v1/state" in spec["paths"]
        assert "/api/v1/sth/connect" in spec["paths"]
    finally:
        server.stop()


def test_cli_reports_invalid_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "icoapi"],
        env={"VITE_API_PORT": "seventy", "ICOAPI_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "VITE_API_PORT" in result.stderr


def test_module_attribute_app_is_built_lazily(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib

    monkeypatch.setenv("ICOAPI_DATA_DIR", str(tmp_path))
    module = importlib.import_module("icoapi.api")
    monkeypatch.delattr(module, "app", raising=False)
    app = module.app
    assert app.title == "ICOapi"
    # Importing created no folders; only starting the app does.
    assert not (tmp_path / "measurements").exists()
