"""GET /api/v1/logs, /logs/view, /logs/download/{file} and /logs/all."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from icoapi.logs.service import MAX_VIEW_BYTES, LogService

LOGS = "/api/v1/logs"
FORBIDDEN = {"detail": "Invalid log file path."}
NOT_FOUND = {"detail": "Log file not found."}

ROTATED = (
    "2025-01-01 10:00:00,123 [INFO] [icoapi] first line\n"
    "2025-01-01 10:30:00,000 [ERROR] [icoapi] failed\n"
    "Traceback (most recent call last):\n"
    "2025-01-01 11:00:00,456 [INFO] [icoapi] last line\n"
    "  a continuation line without a timestamp\n"
)
JSON_LINES = (
    '{"timestamp": "2025-02-01T08:00:00+00:00", "level": "INFO", "message": "a"}\n'
    '{"timestamp": "2025-02-01T09:15:00.500000+00:00", "level": "INFO", "message": "b"}\n'
)


def test_listing(api: TestClient, log_dir: Path) -> None:
    (log_dir / "icodaq.log.1").write_text(ROTATED, "utf-8")
    (log_dir / "icodaq.log.2").write_text(JSON_LINES, "utf-8")
    (log_dir / "icodaq.log.10").write_text("no timestamps here\n", "utf-8")
    (log_dir / "other.log").write_text(ROTATED, "utf-8")
    (log_dir / "notes.txt").write_text("x", "utf-8")

    response = api.get(LOGS)

    assert response.status_code == 200
    body = response.json()
    assert body["directory"] == str(log_dir)
    assert (body["max_bytes"], body["backup_count"]) == (2 * 1024 * 1024, 4)
    files = {entry["name"]: entry for entry in body["files"]}
    assert list(files) == ["icodaq.log", "icodaq.log.1", "icodaq.log.2", "icodaq.log.10"]
    assert files["icodaq.log.1"] == {
        "name": "icodaq.log.1",
        "size": len(ROTATED),
        "first_timestamp": "2025-01-01T10:00:00.123000",
        "last_timestamp": "2025-01-01T11:00:00.456000",
    }
    assert files["icodaq.log.2"]["first_timestamp"] == "2025-02-01T08:00:00+00:00"
    assert files["icodaq.log.2"]["last_timestamp"] == "2025-02-01T09:15:00.500000+00:00"
    assert files["icodaq.log.10"]["first_timestamp"] is None
    assert files["icodaq.log.10"]["last_timestamp"] is None
    assert files["icodaq.log"]["first_timestamp"] is not None


def test_timestamps_of_large_file_come_from_head_and_tail(api: TestClient, log_dir: Path) -> None:
    filler = ("x" * 99 + "\n") * 40_000  # 4 MB without timestamps
    (log_dir / "icodaq.log.1").write_text(
        "2025-03-01 00:00:00,001 first\n" + filler + "2025-03-02 00:00:00,002 last\n", "utf-8"
    )
    [entry] = [f for f in api.get(LOGS).json()["files"] if f["name"] == "icodaq.log.1"]
    assert entry["first_timestamp"] == "2025-03-01T00:00:00.001000"
    assert entry["last_timestamp"] == "2025-03-02T00:00:00.002000"


def test_view_whole_file(api: TestClient, log_dir: Path) -> None:
    (log_dir / "icodaq.log.1").write_text(ROTATED, "utf-8")
    response = api.get(f"{LOGS}/view", params={"file": "icodaq.log.1", "limit": 0})
    assert response.status_code == 200
    assert response.json() == {"filename": "icodaq.log.1", "content": ROTATED, "truncated": False}


def test_view_of_live_log_file(api: TestClient) -> None:
    response = api.get(f"{LOGS}/view", params={"file": "icodaq.log"})
    assert response.status_code == 200
    assert "Starting icoapi" in response.json()["content"]


@pytest.fixture
def numbered_log(log_dir: Path) -> Path:
    path = log_dir / "icodaq.log.3"
    path.write_text("".join(f"line {number:06d}\n" for number in range(300_000)), "utf-8")
    return path


def test_view_limit_returns_last_lines_of_large_file(api: TestClient, numbered_log: Path) -> None:
    response = api.get(f"{LOGS}/view", params={"file": numbered_log.name, "limit": 5})
    assert response.status_code == 200
    assert response.json()["content"] == "".join(
        f"line {number:06d}\n" for number in range(299_995, 300_000)
    )


def test_view_limit_more_than_lines(api: TestClient, log_dir: Path) -> None:
    (log_dir / "icodaq.log.1").write_text("a\nb\nc", "utf-8")  # no final newline
    for limit, expected in ((2, "b\nc"), (3, "a\nb\nc"), (50, "a\nb\nc")):
        body = api.get(f"{LOGS}/view", params={"file": "icodaq.log.1", "limit": limit}).json()
        assert body["content"] == expected


def test_view_of_huge_file_shows_its_end(api: TestClient, log_dir: Path) -> None:
    path = log_dir / "icodaq.log.4"
    line = "y" * 1023 + "\n"
    with open(path, "w", encoding="utf-8") as file:
        file.write("first line\n")
        file.write(line * (MAX_VIEW_BYTES // len(line) + 100))
        file.write("final line\n")
    body = api.get(f"{LOGS}/view", params={"file": path.name}).json()
    assert body["truncated"] is True
    notice, rest = body["content"].split("\n", 1)
    assert notice == (
        f"[Only the last 10 MiB of icodaq.log.4 ({path.stat().st_size} bytes) "
        "are shown; download the file for the complete log.]"
    )
    assert rest.endswith(line + "final line\n")
    assert rest.startswith("y")
    assert len(rest) <= MAX_VIEW_BYTES


def test_view_limit_must_not_be_negative(api: TestClient) -> None:
    response = api.get(f"{LOGS}/view", params={"file": "icodaq.log", "limit": -1})
    assert response.status_code == 422


def test_download(api: TestClient, log_dir: Path) -> None:
    (log_dir / "icodaq.log.1").write_text(ROTATED, "utf-8")
    response = api.get(f"{LOGS}/download/icodaq.log.1")
    assert response.status_code == 200
    assert response.content == ROTATED.encode()
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == str(len(ROTATED))
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"icodaq.log.1\"; filename*=UTF-8''icodaq.log.1"
    )


def test_download_of_live_file_is_consistent(api: TestClient) -> None:
    # The live file grows while it is sent (the request itself logs); the body
    # must still match the announced length.
    response = api.get(f"{LOGS}/download/icodaq.log")
    assert response.status_code == 200
    assert len(response.content) == int(response.headers["content-length"])


def test_download_name_is_quoted(api: TestClient, log_dir: Path) -> None:
    (log_dir / 'prüfung "1".log').write_text("x\n", "utf-8")
    response = api.get(f"{LOGS}/download/pr%C3%BCfung%20%221%22.log")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"pr_fung _1_.log\"; filename*=UTF-8''pr%C3%BCfung%20%221%22.log"
    )


TRAVERSAL_NAMES = [
    "..",
    "../icodaq.log",
    "../../../../etc/passwd",
    "/etc/passwd",
    "..\\icodaq.log",
    "logs\\..\\..\\secret.log",
    "sub/icodaq.log",
    "icodaq.log/..",
    "..%2Ficodaq.log",
    "../logs2/sibling.log",
    "C:icodaq.log",
]


@pytest.fixture
def outside_files(api: TestClient, log_dir: Path) -> None:
    sibling = log_dir.parent / "logs2"
    sibling.mkdir()
    (sibling / "sibling.log").write_text("sibling secret\n", "utf-8")
    (log_dir.parent / "secret.log").write_text("secret\n", "utf-8")
    os.symlink(log_dir.parent / "secret.log", log_dir / "evil.log")


@pytest.mark.usefixtures("outside_files")
@pytest.mark.parametrize("name", [*TRAVERSAL_NAMES, "evil.log"])
def test_view_rejects_names_leaving_the_folder(api: TestClient, name: str) -> None:
    response = api.get(f"{LOGS}/view", params={"file": name})
    assert response.status_code == 403
    assert response.json() == FORBIDDEN


@pytest.mark.usefixtures("outside_files")
@pytest.mark.parametrize(
    "raw_path",
    [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "%2E%2E",
        "..%5Cicodaq.log",
        "..%2Flogs2%2Fsibling.log",
        "sub%2Ficodaq.log",
        "evil.log",
        "%2E%2E%2Fsecret.log",
    ],
)
def test_download_rejects_names_leaving_the_folder(api: TestClient, raw_path: str) -> None:
    response = api.get(f"{LOGS}/download/{raw_path}")
    assert response.status_code == 403
    assert response.json() == FORBIDDEN


def test_symlink_within_folder_is_served(api: TestClient, log_dir: Path) -> None:
    (log_dir / "icodaq.log.1").write_text(ROTATED, "utf-8")
    os.symlink(log_dir / "icodaq.log.1", log_dir / "latest.log")
    response = api.get(f"{LOGS}/download/latest.log")
    assert (response.status_code, response.content) == (200, ROTATED.encode())


@pytest.mark.parametrize("name", ["icodaq.log.99", "missing.log", "notes.txt", "folder.log"])
def test_unknown_file_is_404(api: TestClient, log_dir: Path, name: str) -> None:
    (log_dir / "notes.txt").write_text("not a log file\n", "utf-8")
    (log_dir / "folder.log").mkdir()
    for response in (
        api.get(f"{LOGS}/view", params={"file": name}),
        api.get(f"{LOGS}/download/{name}"),
    ):
        assert response.status_code == 404
        assert response.json() == NOT_FOUND


def test_zip_of_all_log_files(api: TestClient, log_dir: Path) -> None:
    (log_dir / "icodaq.log.1").write_text(ROTATED, "utf-8")
    (log_dir / "icodaq.log.2").write_text(JSON_LINES, "utf-8")
    (log_dir / "other.log").write_text("other\n", "utf-8")
    (log_dir / "notes.txt").write_text("not a log\n", "utf-8")

    response = api.get(f"{LOGS}/all")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"logs.zip\"; filename*=UTF-8''logs.zip"
    )
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == ["icodaq.log", "icodaq.log.1", "icodaq.log.2", "other.log"]
    assert archive.read("icodaq.log.1") == ROTATED.encode()
    assert archive.read("icodaq.log.2") == JSON_LINES.encode()


def test_zip_is_built_while_streaming(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    big.write_bytes(os.urandom(3 * 1024 * 1024))  # incompressible
    chunks = list(LogService._zip_chunks([big]))
    assert len(chunks) > 20
    assert max(len(chunk) for chunk in chunks) < 256 * 1024
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.read("big.log") == big.read_bytes()
