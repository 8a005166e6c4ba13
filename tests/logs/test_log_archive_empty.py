"""GET /api/v1/logs/all when there is no log file (its own app: the live log
file is removed)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient


def test_no_log_files(api: TestClient, log_dir: Path) -> None:
    for entry in log_dir.iterdir():
        entry.unlink()
    response = api.get("/api/v1/logs/all")
    assert response.status_code == 404
    assert response.json() == {"detail": "No log files found."}
    assert api.get("/api/v1/logs").json()["files"] == []
