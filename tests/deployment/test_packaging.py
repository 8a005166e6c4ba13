"""Packaging: the project installs from Poetry's default package index, so a
clean clone works wherever the ordinary tools reach a registry (or a mirror the
machine configures), and no file pins an index of its own."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Files a newcomer installs from or reads first.
INSTALL_FILES = ("pyproject.toml", "Makefile", "Dockerfile", "install.sh", "README.md")
INDEX_OPTION = re.compile(r"--(extra-)?index-url|--trusted-host|/simple/?[\"'\s]")


def test_pyproject_names_no_package_source() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "source" not in pyproject["tool"]["poetry"]
    assert "requires-python" in pyproject["project"]


def test_lock_file_pins_no_package_source() -> None:
    lock = tomllib.loads((ROOT / "poetry.lock").read_text(encoding="utf-8"))
    packages = lock["package"]
    assert packages, "poetry.lock lists no packages"
    pinned = [package["name"] for package in packages if "source" in package]
    assert pinned == []


def test_install_files_pass_no_index_options() -> None:
    offending = {
        name: INDEX_OPTION.findall((ROOT / name).read_text(encoding="utf-8"))
        for name in INSTALL_FILES
    }
    assert {name: found for name, found in offending.items() if found} == {}
