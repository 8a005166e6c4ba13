"""The tokens file: hashes only, roles, strict parsing, 0600, and the CLI."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from icoapi.access.__main__ import main as access_cli
from icoapi.access.rules import Role
from icoapi.access.tokens import (
    TOKEN_PATTERN,
    TokenFileError,
    add_token,
    load_tokens,
    remove_token,
)
from icoapi.api import create_app
from tests.support import ROOT, make_settings


def test_file_holds_hashes_never_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    viewer = add_token(path, "display", "viewer")
    operator = add_token(path, "line-3", "operator")
    assert TOKEN_PATTERN.fullmatch(viewer) and TOKEN_PATTERN.fullmatch(operator)
    text = path.read_text()
    assert viewer not in text and operator not in text
    assert hashlib.sha256(viewer.encode()).hexdigest() in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store = load_tokens(path)
    assert store.enabled
    found = store.identify(viewer)
    assert found is not None and (found.name, found.role) == ("display", Role.VIEWER)
    found = store.identify(operator)
    assert found is not None and found.role is Role.OPERATOR
    assert store.identify(viewer[:-1]) is None
    assert store.identify("") is None
    assert remove_token(path, "display")
    assert load_tokens(path).identify(viewer) is None
    assert not remove_token(path, "display")


def test_missing_file_means_access_control_off(tmp_path: Path) -> None:
    assert not load_tokens(tmp_path / "none.yaml").enabled
    assert load_tokens(tmp_path / "none.yaml").with_api_key("k3y-k3y").enabled


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tokens: [", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("tokens:\n  - name: a\n    role: admin\n    sha256: " + "0" * 64, "'role' must be"),
        ("tokens:\n  - name: a\n    role: viewer\n    sha256: abc", "'sha256' must be"),
        ("tokens:\n  - role: viewer\n    sha256: " + "0" * 64, "'name' must be"),
        (
            "tokens:\n"
            + "".join(f"  - name: a\n    role: viewer\n    sha256: {d * 64}\n" for d in "ab"),
            "used twice",
        ),
    ],
)
def test_invalid_file_stops_the_service(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(content)
    with pytest.raises(TokenFileError, match=message):
        load_tokens(path)
    # Fail closed: no service with a half-read tokens file.
    with pytest.raises(TokenFileError):
        create_app(make_settings(tmp_path / "data", ICOAPI_TOKENS_FILE=path))


@pytest.mark.parametrize("content", ["", "# no tokens yet\n", "tokens: []\n"])
def test_file_without_tokens_stops_the_service(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(content)
    # Someone meant to turn access control on: never run silently without it.
    with pytest.raises(TokenFileError, match="holds no tokens, so access control would be off"):
        create_app(make_settings(tmp_path / "data", ICOAPI_TOKENS_FILE=path))
    with pytest.raises(TokenFileError, match="holds no tokens"):
        create_app(make_settings(tmp_path / "data", ICOAPI_TOKENS_FILE=path, ICOAPI_API_KEY="k3y"))
    # The command line still adds the first token to it.
    add_token(path, "display", "viewer")
    assert create_app(
        make_settings(tmp_path / "data", ICOAPI_TOKENS_FILE=path)
    ).state.tokens.enabled


def test_service_refuses_an_empty_tokens_file_and_says_why(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "tokens.yaml"
    path.write_text("tokens: []\n")
    environment = {
        "ICOAPI_DATA_DIR": str(tmp_path / "data"),
        "ICOAPI_TOKENS_FILE": str(path),
        "CAN_INTERFACE": "virtual",
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-m", "icoapi"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "holds no tokens, so access control would be off" in result.stderr


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tokens.yaml"
    assert access_cli(["--file", str(path), "add", "display", "--role", "viewer"]) == 0
    token = next(
        line for line in capsys.readouterr().out.splitlines() if TOKEN_PATTERN.fullmatch(line)
    )
    assert load_tokens(path).identify(token) is not None
    assert access_cli(["--file", str(path), "add", "display", "--role", "viewer"]) == 2
    assert access_cli(["--file", str(path), "list"]) == 0
    assert "display\tviewer" in capsys.readouterr().out
    assert access_cli(["--file", str(path), "remove", "display"]) == 0
    # The last token takes the file with it (an empty one would stop the service).
    assert "access control is off" in capsys.readouterr().out
    assert not path.exists()
    assert access_cli(["--file", str(path), "remove", "display"]) == 1
    assert not load_tokens(path).enabled


def test_startup_says_whether_access_control_is_on(tmp_path: Path) -> None:
    exposed = make_settings(tmp_path / "open", VITE_API_HOSTNAME="0.0.0.0")
    with TestClient(create_app(exposed)):
        pass
    assert "Access control off" in exposed.log_file.read_text()
    path = tmp_path / "tokens.yaml"
    token = add_token(path, "display", "viewer")
    path.chmod(0o644)
    guarded = make_settings(tmp_path / "guarded", ICOAPI_TOKENS_FILE=path)
    with TestClient(create_app(guarded)):
        pass
    log = guarded.log_file.read_text()
    assert "Access control on: 1 token(s) (display: viewer)" in log
    assert "readable by other users" in log
    assert "Access control off" not in log
    assert token not in log
