"""Hostile measurement files (issue 17): uploaded or copied into the folder, no
file makes the service run code or return data from outside the file, through
any route that opens a file, before and after a restart of the service.

The service runs as ``python -m icoapi`` in a process of its own: a payload that
ran would create its marker file from there."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.files.hostile import ATTACKS, SECRET, build
from tests.support import free_port, spawn_service, wait_for_service

API = "/api/v1"
METADATA = {"version": "1", "profile": "p", "parameters": {"person": "x"}}


class Service:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = spawn_service(data_dir, self.port, CAN_INTERFACE="virtual")
        wait_for_service(self.url, self.process)
        self.client = httpx.Client(base_url=f"{self.url}{API}", timeout=30)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    (directory / "measurements").mkdir(parents=True)
    return directory


@pytest.fixture
def start(data_dir: Path) -> Iterator[type[Service]]:
    services: list[Service] = []

    def make() -> Service:
        service = Service(data_dir)
        services.append(service)
        return service

    yield make  # type: ignore[misc]
    for service in services:
        if service.process.poll() is None:
            service.stop()


def assert_nothing_escapes(client: httpx.Client, name: str, markers: Path) -> None:
    """Every route that opens the file refuses it with 422; none returns the secret."""
    answers = {
        "analyze": client.get(f"/files/analyze/{name}"),
        "meta": client.get(f"/files/analyze/meta/{name}"),
        "embedded": client.get(f"/files/{name}/embedded/x"),
        "pre_meta": client.post(f"/files/pre_meta/{name}", json=METADATA),
        "post_meta": client.post(f"/files/post_meta/{name}", json=METADATA),
        "embed": client.post(
            f"/files/{name}/embedded", files=[("files", ("a.txt", b"a", "text/plain"))]
        ),
        "delete_embedded": client.delete(f"/files/{name}/embedded/x"),
    }
    for route, response in answers.items():
        assert response.status_code == 422, (name, route, response.text)
        assert "refused" in response.json()["detail"], (name, route)
        assert SECRET not in response.content, (name, route)
    download = client.get(f"/files/{name}")  # the file's own bytes, nothing else
    assert download.status_code == 200
    assert SECRET not in download.content
    listing = client.get("/files")
    assert listing.status_code == 200
    [entry] = [f for f in listing.json()["files"] if f["name"] == name]
    assert entry["invalid"], name
    assert list(markers.iterdir()) == [], f"a payload ran ({name})"


def test_hostile_files_are_refused_before_and_after_a_restart(
    start: type[Service], data_dir: Path, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    crafted = tmp_path / "crafted"
    crafted.mkdir()
    service = start()
    names = []
    for attack in ATTACKS:
        source = build(crafted / f"{attack}.hdf5", attack, markers / attack, crafted)
        response = service.client.post(
            "/files/analyze", files={"file": (source.name, source.read_bytes())}
        )
        assert response.status_code == 422, (attack, response.text)
        assert "refused" in response.json()["detail"]
        # copied into the folder by other means (a USB stick, a file share)
        copied = f"copied_{attack}.hdf5"
        shutil.copy(source, data_dir / "measurements" / copied)
        names.append(copied)
    stored = sorted(p.name for p in (data_dir / "measurements").iterdir())
    assert stored == sorted(names)  # no upload was stored
    for name in names:
        assert_nothing_escapes(service.client, name, markers)
    service.stop()

    service = start()
    for name in names:
        assert_nothing_escapes(service.client, name, markers)
    listing = service.client.get("/files").json()["files"]
    assert {f["name"] for f in listing if f["invalid"]} == set(names)
