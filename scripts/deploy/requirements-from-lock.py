#!/usr/bin/env python3
"""Print the runtime requirements pinned in poetry.lock as a pip requirements file.

    python3 scripts/deploy/requirements-from-lock.py [PROJECT_DIR] > requirements.txt
    pip install --require-hashes --no-deps -r requirements.txt

Only the ``main`` group (no development tools, no Poetry), each package with the
version, environment marker and file hashes the lock records, so pip installs
exactly the locked set, from the network or offline from a wheelhouse
(``--no-index --find-links DIR``). Needs Python >= 3.11 (tomllib) and nothing else:
install.sh and the Dockerfile run it with the service's own interpreter.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

SUPPORTED_LOCK_VERSIONS = ("2.0", "2.1")


class LockError(Exception):
    """poetry.lock cannot be turned into requirements (old format or stale)."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main_group_marker(package: dict[str, Any]) -> str | None:
    markers = package.get("markers")
    if isinstance(markers, dict):
        value = markers.get("main")
        return str(value) if value else None
    return str(markers) if markers else None


def declared_dependencies(pyproject: dict[str, Any]) -> list[str]:
    names = []
    for requirement in pyproject.get("project", {}).get("dependencies", []):
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        if match:
            names.append(canonical(match.group(1)))
    return names


def requirement_lines(project_dir: Path) -> list[str]:
    lock = tomllib.loads((project_dir / "poetry.lock").read_text(encoding="utf-8"))
    pyproject = tomllib.loads((project_dir / "pyproject.toml").read_text(encoding="utf-8"))
    version = str(lock.get("metadata", {}).get("lock-version", ""))
    if version not in SUPPORTED_LOCK_VERSIONS:
        raise LockError(
            f"poetry.lock has lock-version {version or 'unknown'}; "
            f"regenerate it with Poetry 2 ('poetry lock')"
        )
    runtime = [p for p in lock.get("package", []) if "main" in p.get("groups", [])]
    locked = {canonical(p["name"]) for p in runtime}
    missing = [name for name in declared_dependencies(pyproject) if name not in locked]
    if missing:
        raise LockError(
            "poetry.lock is stale: it has no runtime entry for "
            + ", ".join(missing)
            + "; run 'poetry lock' in the source tree"
        )
    lines = []
    for package in sorted(runtime, key=lambda p: canonical(p["name"])):
        hashes = [entry["hash"] for entry in package.get("files", []) if entry.get("hash")]
        if not hashes:
            raise LockError(f"poetry.lock records no file hashes for {package['name']}")
        line = f"{canonical(package['name'])}=={package['version']}"
        marker = main_group_marker(package)
        if marker:
            line += f" ; {marker}"
        line += "".join(f" \\\n    --hash={value}" for value in hashes)
        lines.append(line)
    return lines


def main(argv: list[str]) -> int:
    project_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2]
    try:
        lines = requirement_lines(project_dir)
    except (OSError, tomllib.TOMLDecodeError, LockError, KeyError) as error:
        print(f"requirements-from-lock: {error}", file=sys.stderr)  # noqa: T201
        return 1
    print("# Generated from poetry.lock (main group) by scripts/deploy/requirements-from-lock.py")  # noqa: T201
    print("\n".join(lines))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
