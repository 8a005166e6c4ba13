"""The folder connector: a local folder (standing in for a mounted share) as
the dataspace, with the same queue and integrity check as the others."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.dataspace.conftest import Service
from tests.dataspace.support import HEADER, measurement, wait_until
from tests.files.hostile import build
from tests.measurement.helpers import connect_device, instructions, start, wait_idle
from tests.support import make_settings, simulator_of, simulator_options

NAME = "drilling__2025-03-03_09-00-00.hdf5"


def folder_connection(folder: Path, **overrides: Any) -> dict[str, Any]:
    return {"enabled": True, "connector": "folder", "path": str(folder), **overrides}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_measurement_is_copied_with_its_checksum_and_survives_a_restart(
    start_service: Callable[..., Service], tmp_path: Path
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    data = tmp_path / "data"
    service = start_service(
        folder_connection(share, auto_upload=True),
        data=data,
        settings=make_settings(data, CAN_INTERFACE="simulator"),
        can_bus_options=simulator_options(),
    )
    wait_until(lambda: service.cloud_state()["healthy"], what="healthy dataspace")
    assert service.cloud_state()["connector"] == "folder"
    simulator = simulator_of(service.server.app)
    mac = simulator.config.devices[0].mac
    http: httpx.Client = service.http
    connect_device(http, mac)
    name = start(http, instructions(mac, time=1))["data"]["name"]
    wait_idle(service.server)
    filename = f"{name}.hdf5"

    def finished_job() -> dict[str, Any] | None:
        jobs = http.get("/cloud/queue").json()["jobs"]
        return next((j for j in jobs if j["name"] == filename), None)

    job = wait_until(finished_job, what="the automatic upload job")
    assert service.wait_job(int(job["id"])).state == "done"
    local = service.measurements / filename
    copy = share / filename
    assert copy.read_bytes() == local.read_bytes()
    assert (share / f"{filename}.sha256").read_text("ascii") == f"{sha256(local)}  {filename}\n"
    assert [p.name for p in share.iterdir() if p.name.startswith(".")] == []  # no partial copy
    assert service.file_cloud(filename)["status"] == "up_to_date"
    listing = http.get("/cloud").json()
    assert [(f["name"], f["s3_size"], f["etag"], f["last_status"]) for f in listing] == [
        (filename, local.stat().st_size, sha256(local), "available")
    ]
    service.server.stop()

    again = start_service(data=data, settings=make_settings(data, CAN_INTERFACE="simulator"))
    wait_until(lambda: again.cloud_state()["healthy"], what="healthy after the restart")
    assert again.file_cloud(filename)["status"] == "up_to_date"


def test_a_missing_share_keeps_the_job_until_it_is_mounted(
    start_service: Callable[..., Service], tmp_path: Path
) -> None:
    share = tmp_path / "not-mounted"
    service = start_service(folder_connection(share))
    path = measurement(service.measurements, NAME)
    wait_until(lambda: "not mounted" in (service.cloud_state()["reason"] or ""))
    response = service.http.post("/cloud/upload", json={"filename": NAME}, params={"wait": 0})
    assert response.status_code == 202
    cloud = service.file_cloud(NAME)
    assert (cloud["status"], cloud["queue_state"]) == ("updating", "queued")

    share.mkdir()  # the share is mounted
    assert service.http.post("/cloud/authenticate").status_code == 200
    assert service.wait_job(response.json()["id"]).state == "done"
    assert (share / NAME).read_bytes() == path.read_bytes()
    assert service.file_cloud(NAME)["status"] == "up_to_date"


def test_a_copy_changed_in_the_folder_is_outdated(
    start_service: Callable[..., Service], tmp_path: Path
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    service = start_service(folder_connection(share))
    path = measurement(service.measurements, NAME)
    wait_until(lambda: service.cloud_state()["healthy"], what="healthy dataspace")
    response = service.http.post("/cloud/upload", json={"filename": NAME})
    assert response.status_code == 200, response.text
    assert service.file_cloud(NAME)["status"] == "up_to_date"

    # Someone else replaces the copy with other bytes of the same size and
    # writes a matching sidecar: only the checksum tells.
    other = bytes(b ^ 0xFF for b in path.read_bytes())
    (share / NAME).write_bytes(other)
    digest = hashlib.sha256(other).hexdigest()
    (share / f"{NAME}.sha256").write_text(f"{digest}  {NAME}\n", "ascii")
    assert service.http.post("/cloud/authenticate").status_code == 200
    assert service.file_cloud(NAME)["status"] == "outdated"


def test_the_folder_connection_is_checked_like_the_others(
    start_service: Callable[..., Service],
) -> None:
    service = start_service()
    document = {"info": HEADER, "connection": folder_connection(Path("relative/share"))}
    response = service.http.post(
        "/config/dataspace",
        files={"file": ("dataspace.yaml", yaml.safe_dump(document), "application/x-yaml")},
    )
    assert response.status_code == 422
    assert (
        "Errors: connection -> path: expected an absolute path (line" in (response.json()["detail"])
    )


@pytest.mark.parametrize("attack", ["root_version", "user_attribute"])
def test_a_hostile_file_is_refused_before_it_is_read(
    start_service: Callable[..., Service], tmp_path: Path, attack: str
) -> None:
    # The upload reads the file's metadata: through the same check as every file
    # route, so a pickled attribute never runs and the file is not sent.
    share = tmp_path / "share"
    share.mkdir()
    marker = tmp_path / "PWNED"
    service = start_service(folder_connection(share))
    wait_until(lambda: service.cloud_state()["healthy"], what="healthy dataspace")
    build(service.measurements / NAME, attack, marker, tmp_path)
    response = service.http.post("/cloud/upload", json={"filename": NAME})
    assert response.status_code >= 400, response.text
    assert "refused" in response.json()["detail"]
    assert not marker.exists()
    assert list(share.iterdir()) == []
