"""The Trident connector against a local stand-in that issues presigned URLs
to a real S3 server (moto) on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import tables
import yaml

from tests.dataspace.conftest import Service
from tests.dataspace.support import (
    FAST,
    HEADER,
    CorruptingProxy,
    TridentStandIn,
    measurement,
    s3_client,
    wait_until,
)
from tests.support import free_port

NAME = "turning__2025-03-02_08-00-00.hdf5"


def upload(service: Service, name: str = NAME) -> int:
    response = service.http.post("/cloud/upload", json={"filename": name}, params={"wait": 0})
    assert response.status_code == 202, response.text
    job_id: int = response.json()["id"]
    return job_id


def healthy(service: Service) -> None:
    wait_until(lambda: service.cloud_state()["healthy"], what="healthy dataspace")


def test_login_upload_and_every_page_of_the_listing(
    start_service: Callable[..., Service], trident: TridentStandIn, s3_endpoint: str, bucket: str
) -> None:
    for index in range(3):  # others' files: the listing spans three pages of two
        trident.add_entry(f"elsewhere-{index}.hdf5")
    service = start_service(trident.connection())
    path = measurement(service.measurements, NAME)
    healthy(service)
    state = service.cloud_state()
    assert state["manage_url"] == f"{trident.url}/api/assets"
    assert state["connector"] == "trident"

    job = service.wait_job(upload(service))
    assert job.state == "done", job.last_error
    entry = next(e for e in trident.entries.values() if e.name == NAME)
    assert job.remote_id == entry.id
    stored = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=entry.key)
    assert stored["Body"].read() == path.read_bytes()
    assert entry.metadata["name"] == "acceleration"
    assert entry.metadata["attributes"]["pre_metadata"]["profile"] == "milling"
    assert entry.metadata["attributes"]["pre_metadata"]["parameters"]["tool_pictures"] == 2
    assert entry.virtual_group == "machines/milling"

    listing = service.http.get("/cloud")
    assert listing.status_code == 200
    names = sorted(f["name"] for f in listing.json())
    assert names == sorted([NAME, "elsewhere-0.hdf5", "elsewhere-1.hdf5", "elsewhere-2.hdf5"])
    pages = [r for r in trident.requests if r == "GET /api/management/files"]
    assert len(pages) >= 2
    cloud = service.file_cloud(NAME)
    assert cloud["status"] == "up_to_date"
    assert cloud["id"] == entry.id
    assert trident.logins == 1  # the token is reused, not renewed before every call
    assert trident.refreshes == 0
    log = service.log_text  # written at DEBUG
    assert "Uploaded turning__2025-03-02_08-00-00.hdf5" in log
    assert "X-Amz-Signature" not in log
    assert trident.password not in log


def test_expired_token_is_refreshed_and_the_request_retried(
    start_service: Callable[..., Service], trident: TridentStandIn
) -> None:
    service = start_service(trident.connection())
    healthy(service)
    trident.expire_tokens()
    assert service.http.get("/cloud").status_code == 200
    assert (trident.logins, trident.refreshes, trident.unauthorized) == (1, 1, 1)

    # A refused refresh leads to a new login.
    trident.expire_tokens()
    trident.refresh_tokens.clear()
    assert service.http.get("/cloud").status_code == 200
    assert (trident.logins, trident.refreshes, trident.unauthorized) == (2, 2, 2)


def test_update_of_a_changed_file(
    start_service: Callable[..., Service], trident: TridentStandIn, s3_endpoint: str, bucket: str
) -> None:
    service = start_service(trident.connection())
    path = measurement(service.measurements, NAME)
    assert service.wait_job(upload(service)).state == "done"
    with tables.open_file(str(path), "a") as h5:
        h5.root.acceleration.attrs["post_metadata"] = '{"version": "1", "parameters": {}}'
    cloud = service.file_cloud(NAME)
    assert cloud["status"] == "outdated"

    missing_id = service.http.post("/cloud/update", json={"filename": NAME, "file_id": None})
    assert missing_id.status_code == 400
    assert missing_id.json() == {"detail": "File ID is required"}

    response = service.http.post("/cloud/update", json={"filename": NAME, "file_id": cloud["id"]})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "done"
    assert f"GET /api/management/files/{cloud['id']}/upload-url" in trident.requests
    assert len(trident.entries) == 1
    entry = trident.entries[cloud["id"]]
    stored = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=entry.key)
    assert stored["Body"].read() == path.read_bytes()
    assert service.file_cloud(NAME)["status"] == "up_to_date"


def test_wrong_password_is_reported_and_the_job_waits(
    start_service: Callable[..., Service], trident: TridentStandIn, s3_endpoint: str, bucket: str
) -> None:
    wrong = "not-the-password-123"
    service = start_service(trident.connection(password=wrong))
    path = measurement(service.measurements, NAME)
    wait_until(lambda: "refused the login" in (service.cloud_state()["reason"] or ""))
    assert service.cloud_state()["healthy"] is False

    response = service.http.post("/cloud/authenticate")
    assert response.status_code == 502
    assert "refused the login of user 'operator'" in response.json()["detail"]
    job_id = upload(service)
    assert service.http.get(f"/cloud/queue/{job_id}").json()["state"] == "queued"

    # The operator fixes the password: the waiting job goes out by itself.
    document = {"info": HEADER, "connection": trident.connection()}
    fixed = service.http.post(
        "/config/dataspace",
        files={"file": ("dataspace.yaml", yaml.safe_dump(document), "application/x-yaml")},
    )
    assert fixed.status_code == 200, fixed.text
    job = service.wait_job(job_id)
    assert job.state == "done", job.last_error
    entry = next(iter(trident.entries.values()))
    assert s3_client(s3_endpoint).get_object(Bucket=bucket, Key=entry.key)["Body"].read() == (
        path.read_bytes()
    )
    assert wrong not in service.log_text
    assert trident.password not in service.log_text


def test_server_down(start_service: Callable[..., Service], trident: TridentStandIn) -> None:
    down = trident.connection(domain=f"127.0.0.1:{free_port()}")
    service = start_service(down)
    measurement(service.measurements, NAME)
    for response in (service.http.post("/cloud/authenticate"), service.http.get("/cloud")):
        assert response.status_code == 502
        assert "cannot be reached" in response.json()["detail"]
    job_id = upload(service)
    assert service.http.get(f"/cloud/queue/{job_id}").json()["state"] == "queued"
    assert service.cloud_state()["healthy"] is False


def test_timeout_is_504_and_does_not_block_the_service(
    start_service: Callable[..., Service], trident: TridentStandIn
) -> None:
    # Long enough for the two requests below to be answered meanwhile.
    service = start_service(trident.connection(), options=replace(FAST, read_timeout=3.0))
    healthy(service)
    trident.mode = "slow"
    result: dict[str, Any] = {}
    asked = len(trident.requests)

    def slow_listing() -> None:
        with httpx.Client(base_url=service.http.base_url, timeout=30) as http:
            result["response"] = http.get("/cloud")

    thread = threading.Thread(target=slow_listing)
    thread.start()
    wait_until(lambda: len(trident.requests) > asked, what="the listing to reach Trident")
    # The service answers other requests while the dataspace keeps it waiting.
    assert service.http.get("/state").status_code == 200
    assert service.http.get("/files").status_code == 200
    assert thread.is_alive()
    thread.join(30)
    response = result["response"]
    assert response.status_code == 504
    assert "did not answer in time" in response.json()["detail"]


def test_garbage_and_server_errors_are_502(
    start_service: Callable[..., Service], trident: TridentStandIn
) -> None:
    service = start_service(trident.connection())
    path = measurement(service.measurements, NAME)
    healthy(service)
    trident.mode = "garbage"
    response = service.http.get("/cloud")
    assert response.status_code == 502
    assert "not JSON" in response.json()["detail"]
    authenticate = service.http.post("/cloud/authenticate")
    assert authenticate.status_code == 502
    job_id = upload(service)
    trident.mode = "error500"
    failing = service.http.get("/cloud")
    assert failing.status_code == 502
    assert "HTTP 500 (maintenance)" in failing.json()["detail"]
    assert service.http.get(f"/cloud/queue/{job_id}").json()["state"] == "queued"

    trident.mode = "ok"
    assert service.http.post("/cloud/authenticate").status_code == 200
    job = service.wait_job(job_id)
    assert job.state == "done", job.last_error
    assert job.bytes_sent == path.stat().st_size


REFERENCE_FIELDS = {
    "id",
    "bucket",
    "objectname",
    "name",
    "description",
    "metadata",
    "created_at",
    "s3_lastmodified",
    "s3_size",
    "origin",
    "author",
    "type",
    "etag",
    "last_status",
    "last_status_time",
    "secrets_count",
    "access_total_count",
    "access_week_count",
    "last_access_time",
    "active_offerings_count",
    "virtual_group",
}


def test_a_dropped_put_is_retried_into_the_same_object(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    proxy = CorruptingProxy(s3_endpoint)
    stand_in = TridentStandIn(s3_endpoint, bucket, upload_endpoint=proxy.url)
    try:
        service = start_service(stand_in.connection())
        path = measurement(service.measurements, NAME)
        healthy(service)
        proxy.drop_puts = 1
        # The answer waits for the job: the retry after the dropped connection
        # is part of it.
        response = service.http.post("/cloud/upload", json={"filename": NAME})
        assert response.status_code == 200, response.text
        job = response.json()
        assert (job["state"], job["attempts"]) == ("done", 2)
        assert proxy.puts == 2
        # One object: the retry asked for a new URL for the object the first
        # attempt created, instead of creating a second one.
        [entry] = stand_in.entries.values()
        assert job["remote_id"] == entry.id
        assert stand_in.requests.count("POST /api/management/files") == 1
        assert f"GET /api/management/files/{entry.id}/upload-url" in stand_in.requests
        stored = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=entry.key)
        assert stored["Body"].read() == path.read_bytes()
        cloud = service.file_cloud(NAME)
        assert (cloud["status"], cloud["id"]) == ("up_to_date", entry.id)
    finally:
        stand_in.close()
        proxy.close()


def test_a_refusal_is_final_at_once(
    start_service: Callable[..., Service], trident: TridentStandIn
) -> None:
    service = start_service(trident.connection())
    measurement(service.measurements, NAME)
    healthy(service)
    trident.mode = "conflict"
    response = service.http.post("/cloud/upload", json={"filename": NAME})
    assert response.status_code == 502
    assert "HTTP 409 (File already exists)" in response.json()["detail"]
    [job] = service.http.get("/cloud/queue").json()["jobs"]
    assert (job["state"], job["attempts"], job["error_status"]) == ("failed", 1, 502)
    # The client offers the upload again and says why.
    cloud = service.file_cloud(NAME)
    assert (cloud["status"], cloud["queue_state"]) == ("not_uploaded", "failed")
    assert "409" in cloud["detail"]

    # Uploading again runs the failed job again (it is not kept twice).
    trident.mode = "ok"
    again = service.http.post("/cloud/upload", json={"filename": NAME})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == job["id"]
    assert service.file_cloud(NAME)["status"] == "up_to_date"


def test_deleted_objects_of_the_same_name_are_ignored(
    start_service: Callable[..., Service], trident: TridentStandIn
) -> None:
    for _ in range(2):
        trident.add_entry(NAME).status = "deleted"
    service = start_service(trident.connection())
    measurement(service.measurements, NAME)
    healthy(service)
    assert service.file_cloud(NAME)["status"] == "not_uploaded"
    response = service.http.post("/cloud/upload", json={"filename": NAME})
    assert response.status_code == 200, response.text
    live = [e for e in trident.entries.values() if e.status is None]
    assert len(live) == 1
    cloud = service.file_cloud(NAME)
    assert (cloud["status"], cloud["id"]) == ("up_to_date", live[0].id)

    # A status that changes at Trident shows at the next file listing.
    live[0].status = "updating"
    assert service.file_cloud(NAME)["status"] == "updating"


def test_listing_has_the_reference_fields(
    start_service: Callable[..., Service], trident: TridentStandIn
) -> None:
    service = start_service(trident.connection())
    measurement(service.measurements, NAME)
    assert service.http.post("/cloud/upload", json={"filename": NAME}).status_code == 200
    [item] = service.http.get("/cloud").json()
    assert set(item) >= REFERENCE_FIELDS
    entry = next(iter(trident.entries.values()))
    # Trident's own values, as it sent them.
    assert {key: item[key] for key in REFERENCE_FIELDS} == trident.details(entry)


def test_file_listings_share_one_remote_listing_and_never_wait_long(
    start_service: Callable[..., Service], trident: TridentStandIn
) -> None:
    # The held listing must stay in flight for the whole test: a read timeout
    # as short as the listing wait would end it under load and start a second.
    service = start_service(trident.connection(), options=replace(FAST, read_timeout=60.0))
    measurement(service.measurements, NAME)
    healthy(service)
    trident.mode = "slow"  # every request waits until released
    asked = len(trident.requests)
    answers: list[int] = []

    def list_files() -> None:
        with httpx.Client(base_url=service.http.base_url, timeout=30) as http:
            answers.append(http.get("/files").status_code)

    threads = [threading.Thread(target=list_files) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Each answered with what was known after a bounded wait (2 s), and one
    # listing was in flight for all three.
    assert answers == [200, 200, 200]
    assert trident.requests[asked:] == ["GET /api/management/files"]
    trident.release.set()
