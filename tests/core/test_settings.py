"""Settings: defaults, environment, .env lookup order and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from icoapi.core.settings import (
    BUNDLED_ENV_FILE,
    Settings,
    SettingsError,
    find_env_file,
    load_settings,
)


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(env_file=None)
    assert settings.VITE_API_HOSTNAME == "0.0.0.0"
    assert settings.VITE_API_PORT == 33215
    assert settings.api_prefix == "/api/v1"
    assert settings.WEBSOCKET_UPDATE_RATE == 60
    assert settings.VITE_APPLICATION_FOLDER == "ICOdaq"
    assert settings.LOG_BACKUP_COUNT == 10
    assert settings.CAN_INTERFACE == "socketcan"
    assert settings.CAN_CHANNEL == "can0"
    assert settings.CAN_BITRATE == 1_000_000
    # platformdirs honours XDG_DATA_HOME, which the test fixture points at tmp_path.
    assert settings.data_dir == tmp_path / "xdg-data" / "ICOdaq"
    assert settings.log_file == settings.data_dir / "logs" / "icodaq.log"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VITE_API_PORT", "8123")
    monkeypatch.setenv("VITE_API_ORIGINS", "http://a.example, http://b.example")
    monkeypatch.setenv("VITE_API_VERSION", "2")
    monkeypatch.setenv("LOG_USE_JSON", "1")
    monkeypatch.setenv("CAN_INTERFACE", "socketcand")
    monkeypatch.setenv("LOG_PATH", str(tmp_path) + "/")
    settings = load_settings(env_file=None)
    assert settings.VITE_API_PORT == 8123
    assert settings.VITE_API_ORIGINS == ["http://a.example", "http://b.example"]
    assert settings.api_prefix == "/api/v2"
    assert settings.LOG_USE_JSON is True
    assert settings.CAN_INTERFACE == "socketcand"
    # A directory given as LOG_PATH means "put the log file there".
    assert settings.log_file == tmp_path / "icodaq.log"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VITE_API_PORT", "not-a-port"),
        ("VITE_API_PORT", "70000"),
        ("WEBSOCKET_UPDATE_RATE", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("CAN_BITRATE", "-5"),
        ("VITE_API_ORIGINS", "*"),
        ("CAN_REQUEST_ATTEMPTS", "0"),
        ("CAN_DEVICE_SEARCH_TIMEOUT", "30"),
        ("CAN_STREAM_TIMEOUT", "0"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(env_file=None)
    assert name in str(raised.value)
    assert str(raised.value).startswith("Invalid setting")


def test_env_file_is_read_but_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text("VITE_API_PORT=1234\nLOG_LEVEL=WARNING\n")
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    settings = load_settings(env_file=env_file)
    assert settings.VITE_API_PORT == 1234
    assert settings.LOG_LEVEL == "ERROR"


def test_env_file_lookup_order(tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    data_dir = tmp_path / "data"
    environ = {"ICOAPI_DATA_DIR": str(data_dir)}
    (cwd / "config").mkdir(parents=True)
    data_dir.mkdir()

    # Nothing local: the bundled default.
    assert find_env_file(cwd, environ) == BUNDLED_ENV_FILE
    # The user's data folder beats the bundled default.
    (data_dir / ".env").write_text("VITE_API_PORT=2000\n")
    assert find_env_file(cwd, environ) == data_dir / ".env"
    # ./config/.env beats both.
    (cwd / "config" / ".env").write_text("VITE_API_PORT=3000\n")
    assert find_env_file(cwd, environ) == cwd / "config" / ".env"


def test_env_file_lookup_uses_application_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # platformdirs reads XDG_DATA_HOME from the process environment.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    folder = tmp_path / "OtherApp"
    folder.mkdir()
    (folder / ".env").write_text("")
    environ = {"VITE_APPLICATION_FOLDER": "OtherApp"}
    assert find_env_file(tmp_path / "nowhere", environ) == folder / ".env"


def test_missing_env_file_is_not_fatal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env_file=tmp_path / "does-not-exist.env")
    assert settings.VITE_API_PORT == 33215


def test_bundled_env_file_parses() -> None:
    # The shipped example must itself be a valid configuration.
    settings = Settings(_env_file=BUNDLED_ENV_FILE)  # type: ignore[call-arg]
    assert settings.VITE_API_PORT == 33215
