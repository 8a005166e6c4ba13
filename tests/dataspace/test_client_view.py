"""The dataspace as the web client sees it (S3 on moto): only its six cloud
statuses at every moment of an upload, answers when the upload is done, the
listing in the reference's field names, and no multipart leftovers."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import yaml

from icoapi.dataspace.queue import UploadQueue
from tests.dataspace.conftest import Service
from tests.dataspace.support import (
    FAST,
    HEADER,
    CorruptingProxy,
    measurement,
    s3_client,
    s3_connection,
    wait_until,
)

NAME = "grinding__2025-03-04_11-00-00.hdf5"
CLIENT_STATUSES = {"not_uploaded", "outdated", "updating", "up_to_date", "error", "created"}


def test_the_client_sees_its_statuses_throughout_an_upload(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    proxy = CorruptingProxy(s3_endpoint)
    try:
        service = start_service(s3_connection(proxy.url, bucket))
        path = measurement(service.measurements, NAME, extra_bytes=12 * 1024 * 1024)
        wait_until(lambda: service.cloud_state()["healthy"], what="healthy dataspace")
        assert service.file_cloud(NAME)["status"] == "not_uploaded"
        proxy.hold_puts = True  # the first part waits until released
        response = service.http.post("/cloud/upload", json={"filename": NAME}, params={"wait": 0})
        assert response.status_code == 202
        job_id = response.json()["id"]
        seen: list[dict[str, Any]] = []

        def done() -> bool:
            cloud = service.file_cloud(NAME)
            seen.append(cloud)
            if proxy.held.is_set():
                proxy.release.set()
            job = service.http.get(f"/cloud/queue/{job_id}").json()
            return bool(job["state"] == "done")

        wait_until(done, what="the upload")
        seen.append(service.file_cloud(NAME))
        assert {cloud["status"] for cloud in seen} <= CLIENT_STATUSES
        uploading = [c for c in seen if c["queue_state"] == "uploading"]
        assert uploading, seen
        assert all(c["status"] == "updating" for c in uploading)
        assert all(0 <= c["progress"] <= 1 for c in uploading)
        assert (seen[-1]["status"], seen[-1]["queue_state"]) == ("up_to_date", "done")
        stored = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=f"site-a/{NAME}")
        assert stored["Body"].read() == path.read_bytes()
    finally:
        proxy.close()


def test_upload_answers_when_done_or_with_the_job_after_the_wait(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    proxy = CorruptingProxy(s3_endpoint)
    try:
        service = start_service(s3_connection(proxy.url, bucket))
        measurement(service.measurements, NAME)
        wait_until(lambda: service.cloud_state()["healthy"], what="healthy dataspace")
        proxy.hold_puts = True
        started = time.monotonic()
        response = service.http.post("/cloud/upload", json={"filename": NAME}, params={"wait": 1})
        assert time.monotonic() - started >= 1
        assert response.status_code == 202
        assert response.json()["state"] == "uploading"
        proxy.release.set()
        assert service.wait_job(response.json()["id"]).state == "done"

        # Done at once (an unchanged file goes up again): 200, and the client's
        # one reload shows up_to_date.
        again = service.http.post("/cloud/upload", json={"filename": NAME})
        assert again.status_code == 200, again.text
        assert again.json()["state"] == "done"
        assert service.file_cloud(NAME)["status"] == "up_to_date"
    finally:
        proxy.close()


def test_listing_uses_the_reference_field_names(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    service = start_service(s3_connection(s3_endpoint, bucket))
    path = measurement(service.measurements, NAME)
    assert service.http.post("/cloud/upload", json={"filename": NAME}).status_code == 200
    [item] = service.http.get("/cloud").json()
    assert item["objectname"] == f"site-a/{NAME}"
    assert item["bucket"] == bucket
    assert item["s3_size"] == path.stat().st_size
    assert item["last_status"] == "available"
    assert item["s3_lastmodified"] is not None
    assert item["etag"] == hashlib.md5(path.read_bytes()).hexdigest()
    # Trident-only fields are null with S3.
    assert item["id"] is None
    assert item["metadata"] is None
    assert item["author"] is None


def test_interrupted_multipart_uploads_are_aborted(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str, tmp_path: Any
) -> None:
    client = s3_client(s3_endpoint)
    # A service killed during a multipart upload: the job was running and
    # remembered its upload id.
    data = tmp_path / "data"
    measurement(data / "measurements", NAME)
    interrupted = client.create_multipart_upload(Bucket=bucket, Key=f"site-a/{NAME}")["UploadId"]
    abandoned = client.create_multipart_upload(Bucket=bucket, Key="site-a/old.hdf5")["UploadId"]
    foreign = client.create_multipart_upload(Bucket=bucket, Key="elsewhere/x.hdf5")["UploadId"]
    UploadQueue(data / "dataspace" / "uploads.sqlite3").close()
    with sqlite3.connect(data / "dataspace" / "uploads.sqlite3") as db:
        db.execute(
            "INSERT INTO jobs (name, state, created, updated, multipart_id) "
            "VALUES (?, 'uploading', 0, 0, ?)",
            (NAME, interrupted),
        )

    # Parts older than a day under the prefix go too (here: any age).
    options = replace(FAST, stale_multipart_age=0.0)
    service = start_service(s3_connection(s3_endpoint, bucket), data=data, options=options)
    [job] = service.http.get("/cloud/queue").json()["jobs"]
    assert service.wait_job(job["id"]).state == "done"
    left = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in left] == [foreign]
    assert abandoned not in [u["UploadId"] for u in left]


def test_cloud_is_usable_right_after_the_first_valid_dataspace_file(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    service = start_service()  # the shipped file: disabled
    document = {"info": HEADER, "connection": s3_connection(s3_endpoint, bucket)}
    stored = service.http.post(
        "/config/dataspace",
        files={"file": ("dataspace.yaml", yaml.safe_dump(document), "application/x-yaml")},
    )
    assert stored.status_code == 200, stored.text
    listing = service.http.get("/cloud")
    assert listing.status_code == 200, listing.text
    assert listing.json() == []
