"""The S3 connector against a real S3 server (moto) on loopback."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import tables
from websockets.sync.client import connect

from icoapi.hdf5.metadata import append_metadata
from tests.dataspace.conftest import Service
from tests.dataspace.support import (
    TEST_KEY_ID,
    TEST_SECRET,
    CorruptingProxy,
    measurement,
    moto_server,
    s3_client,
    s3_connection,
    wait_until,
)
from tests.support import free_port

NAME = "milling__2025-03-01_10-15-00.hdf5"


def upload(service: Service, name: str = NAME) -> int:
    response = service.http.post("/cloud/upload", json={"filename": name}, params={"wait": 0})
    assert response.status_code == 202, response.text
    job_id: int = response.json()["id"]
    return job_id


def test_upload_listing_and_status(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    service = start_service(s3_connection(s3_endpoint, bucket))
    path = measurement(service.measurements, NAME)
    wait_until(lambda: service.cloud_state()["healthy"], what="healthy dataspace")
    state = service.cloud_state()
    assert state["enabled"] is True
    assert state["connector"] == "s3"
    assert state["reason"] is None
    assert service.file_cloud(NAME)["status"] == "not_uploaded"

    job = service.wait_job(upload(service))
    assert job.state == "done", job.last_error
    assert job.bytes_sent == path.stat().st_size

    stored = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=f"site-a/{NAME}")
    assert stored["Body"].read() == path.read_bytes()
    metadata = json.loads(stored["Metadata"]["icoapi-metadata"])
    assert metadata["path"] == "/acceleration"
    assert metadata["attributes"]["pre_metadata"]["profile"] == "milling"
    # Pictures travel as their count (§8.2), not as data.
    assert metadata["attributes"]["pre_metadata"]["parameters"] == {
        "tool": "T1",
        "tool_pictures": 2,
    }

    listing = service.http.get("/cloud")
    assert listing.status_code == 200
    assert [(f["name"], f["size"]) for f in listing.json()] == [(NAME, path.stat().st_size)]
    cloud = service.file_cloud(NAME)
    assert cloud["status"] == "up_to_date"
    assert cloud["upload_timestamp"] is not None
    queue = service.http.get("/cloud/queue").json()["jobs"]
    assert [(j["name"], j["state"], j["progress"]) for j in queue] == [(NAME, "done", 1.0)]


def test_status_follows_local_changes_and_update(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    service = start_service(s3_connection(s3_endpoint, bucket))
    path = measurement(service.measurements, NAME)
    assert service.wait_job(upload(service)).state == "done"
    assert service.file_cloud(NAME)["status"] == "up_to_date"

    with tables.open_file(str(path), "a") as h5:
        h5.root.acceleration.attrs["post_metadata"] = '{"version": "1", "parameters": {}}'
    assert service.file_cloud(NAME)["status"] == "outdated"

    # The answer waits for the job: done, so the client's reload shows up_to_date.
    response = service.http.post("/cloud/update", json={"filename": NAME, "file_id": None})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "done"
    assert service.file_cloud(NAME)["status"] == "up_to_date"
    stored = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=f"site-a/{NAME}")
    assert stored["Body"].read() == path.read_bytes()


def test_an_object_uploaded_elsewhere_is_compared_by_checksum(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    service = start_service(s3_connection(s3_endpoint, bucket, bucket_folder=None))
    path = measurement(service.measurements, NAME)
    other = measurement(service.measurements, "other.hdf5", frames=400)
    client = s3_client(s3_endpoint)
    client.put_object(Bucket=bucket, Key=NAME, Body=path.read_bytes())
    # Same size, other bytes: only the checksum can tell.
    client.put_object(Bucket=bucket, Key="other.hdf5", Body=b"x" * other.stat().st_size)
    assert service.http.post("/cloud/authenticate").status_code == 200
    assert service.file_cloud(NAME)["status"] == "up_to_date"
    assert service.file_cloud("other.hdf5")["status"] == "outdated"


def test_multipart_upload_of_a_file_larger_than_a_part(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    service = start_service(s3_connection(s3_endpoint, bucket))
    path = measurement(service.measurements, NAME, extra_bytes=12 * 1024 * 1024)
    size = path.stat().st_size
    assert size > 2 * 5 * 1024 * 1024
    job = service.wait_job(upload(service))
    assert job.state == "done", job.last_error
    client = s3_client(s3_endpoint)
    head = client.head_object(Bucket=bucket, Key=f"site-a/{NAME}")
    assert head["ETag"].strip('"').endswith("-3")  # three 5 MiB parts
    assert head["ContentLength"] == size
    assert client.get_object(Bucket=bucket, Key=f"site-a/{NAME}")["Body"].read() == (
        path.read_bytes()
    )
    assert service.file_cloud(NAME)["status"] == "up_to_date"


def test_checksum_mismatch_is_detected(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    proxy = CorruptingProxy(s3_endpoint)
    try:
        proxy.corrupt = True
        service = start_service(s3_connection(proxy.url, bucket))
        path = measurement(service.measurements, NAME)
        job = service.wait_job(upload(service))
        assert job.state == "failed"
        assert job.attempts == 2  # FAST.max_attempts: a mismatch is not retried forever
        assert "does not match the local file" in job.last_error
        cloud = service.file_cloud(NAME)
        # The client offers the upload again; the reason is in detail.
        assert cloud["status"] in ("not_uploaded", "outdated")
        assert cloud["queue_state"] == "failed"
        assert "does not match" in cloud["detail"]

        proxy.corrupt = False
        response = service.http.post(f"/cloud/queue/{job.id}/retry")
        assert response.status_code == 200, response.text
        assert service.wait_job(job.id).state == "done"
        assert service.file_cloud(NAME)["status"] == "up_to_date"
        stored = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=f"site-a/{NAME}")
        assert stored["Body"].read() == path.read_bytes()
    finally:
        proxy.close()


def test_server_down_then_back_completes_the_queued_job(
    start_service: Callable[..., Service], tmp_path: Path
) -> None:
    port = free_port()  # nothing listens here until the store "comes back"
    bucket = "comes-back"
    service = start_service(s3_connection(f"http://127.0.0.1:{port}", bucket))
    path = measurement(service.measurements, NAME)
    wait_until(lambda: service.cloud_state()["reason"] != "Not connected yet.")
    state = service.cloud_state()
    assert state["enabled"] is True
    assert state["healthy"] is False
    assert "cannot be reached" in state["reason"]

    job_id = upload(service)
    cloud = service.file_cloud(NAME)
    assert (cloud["status"], cloud["queue_state"]) == ("updating", "queued")
    listing = service.http.get("/cloud")
    assert listing.status_code == 502
    assert "cannot be reached" in listing.json()["detail"]

    with moto_server(port) as endpoint:
        s3_client(endpoint).create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        job = service.wait_job(job_id)
        assert job.state == "done", job.last_error
        stored = s3_client(endpoint).get_object(Bucket=bucket, Key=f"site-a/{NAME}")
        assert stored["Body"].read() == path.read_bytes()
        wait_until(lambda: service.cloud_state()["healthy"], what="healthy again")


def test_queue_survives_a_restart(start_service: Callable[..., Service], tmp_path: Path) -> None:
    port = free_port()
    bucket = "after-restart"
    connection = s3_connection(f"http://127.0.0.1:{port}", bucket)
    first = start_service(connection)
    path = measurement(first.measurements, NAME)
    job_id = upload(first)
    first.server.stop()

    database = first.data / "dataspace" / "uploads.sqlite3"
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT name, state FROM jobs WHERE id=?", (job_id,)).fetchall()
    assert rows == [(NAME, "queued")]

    with moto_server(port) as endpoint:
        s3_client(endpoint).create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        second = start_service(data=first.data)
        job = second.wait_job(job_id)
        assert job.state == "done", job.last_error
        stored = s3_client(endpoint).get_object(Bucket=bucket, Key=f"site-a/{NAME}")
        assert stored["Body"].read() == path.read_bytes()
        assert second.file_cloud(NAME)["status"] == "up_to_date"


def test_cancel_and_retry(start_service: Callable[..., Service]) -> None:
    service = start_service(s3_connection(f"http://127.0.0.1:{free_port()}", "nowhere"))
    measurement(service.measurements, NAME)
    job_id = upload(service)
    cancelled = service.http.post(f"/cloud/queue/{job_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    again = service.http.post(f"/cloud/queue/{job_id}/cancel")
    assert again.status_code == 409
    assert "detail" in again.json()
    retried = service.http.post(f"/cloud/queue/{job_id}/retry")
    assert retried.status_code == 200
    assert retried.json()["state"] == "queued"
    assert service.http.post("/cloud/queue/999999/retry").status_code == 404
    # Uploading the same file again reuses the waiting job.
    assert upload(service) == job_id


def test_file_names_are_checked(start_service: Callable[..., Service]) -> None:
    service = start_service(s3_connection(f"http://127.0.0.1:{free_port()}", "nowhere"))
    bad = service.http.post("/cloud/upload", json={"filename": "../config/dataspace.yaml"})
    assert bad.status_code == 400
    missing = service.http.post("/cloud/upload", json={"filename": "missing.hdf5"})
    assert missing.status_code == 404
    assert missing.json() == {"detail": "File not found. Check your measurement directory."}
    assert service.http.post("/cloud/upload", json={}).status_code == 422


def test_disabled_and_misconfigured_dataspace(start_service: Callable[..., Service]) -> None:
    service = start_service()  # the shipped file: disabled
    measurement(service.measurements, NAME)
    assert service.cloud_state()["enabled"] is False
    response = service.http.post("/cloud/upload", json={"filename": NAME})
    assert response.status_code == 409
    assert "not enabled" in response.json()["detail"]
    assert service.file_cloud(NAME)["status"] == "not_uploaded"

    broken = s3_connection("http://127.0.0.1:1", "Not A Bucket!")
    other = start_service(broken, data=service.data.parent / "other")
    measurement(other.measurements, NAME)
    state = other.cloud_state()
    assert state["enabled"] is True
    assert state["healthy"] is False
    assert "connection -> bucket" in state["reason"]
    response = other.http.post("/cloud/upload", json={"filename": NAME})
    assert response.status_code == 409
    assert "connection -> bucket" in response.json()["detail"]


def test_secrets_are_masked_and_never_logged(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    service = start_service(s3_connection(s3_endpoint, bucket))
    measurement(service.measurements, NAME)
    assert service.wait_job(upload(service)).state == "done"
    text = service.http.get("/config/dataspace").text
    assert TEST_SECRET not in text
    assert TEST_KEY_ID not in text
    for response in (service.http.get("/cloud"), service.http.get("/state")):
        assert TEST_SECRET not in response.text
    assert TEST_SECRET not in service.log_text


def test_state_clients_see_the_upload(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    service = start_service(s3_connection(s3_endpoint, bucket))
    path = measurement(service.measurements, NAME, extra_bytes=6 * 1024 * 1024)
    wait_until(lambda: service.cloud_state()["healthy"], what="healthy dataspace")
    clouds: list[dict[str, object]] = []
    with connect(f"{service.server.ws_url}/api/v1/state") as socket:
        clouds.append(json.loads(socket.recv(timeout=10))["data"]["cloud"])
        job_id = upload(service)
        while not (
            clouds[-1]["uploading"] is None and clouds[-1]["queued"] == 0 and len(clouds) > 2
        ):
            clouds.append(json.loads(socket.recv(timeout=30))["data"]["cloud"])
    assert service.wait_job(job_id).state == "done"
    uploading = [c["uploading"] for c in clouds if c["uploading"] is not None]
    assert uploading, clouds
    assert all(u["name"] == NAME and u["size"] == path.stat().st_size for u in uploading)  # type: ignore[index]
    sent = [u["bytes_sent"] for u in uploading]  # type: ignore[index]
    assert sent == sorted(sent)
    assert clouds[-1]["healthy"] is True


def test_a_file_changed_during_the_upload_is_uploaded_again(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    proxy = CorruptingProxy(s3_endpoint)
    try:
        service = start_service(s3_connection(proxy.url, bucket))
        path = measurement(service.measurements, NAME)
        wait_until(lambda: service.cloud_state()["healthy"], what="healthy dataspace")
        proxy.hold_puts = True
        job_id = upload(service)
        assert proxy.held.wait(30)
        # The operator edits the file (post-measurement metadata) mid-upload.
        with tables.open_file(str(path), "a") as h5:
            h5.root.acceleration.attrs["post_metadata"] = '{"version": "2", "parameters": {}}'
        proxy.release.set()
        job = service.wait_job(job_id)
        assert job.state == "done", job.last_error
        assert job.attempts == 2
        stored = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=f"site-a/{NAME}")
        assert stored["Body"].read() == path.read_bytes()
        assert service.file_cloud(NAME)["status"] == "up_to_date"
    finally:
        proxy.close()


def test_metadata_stored_as_an_array_travels_with_the_object(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str
) -> None:
    """Post-metadata too large for an HDF5 attribute is stored as an array
    (icoapi.hdf5); the upload still carries it, here in the sidecar object."""
    service = start_service(s3_connection(s3_endpoint, bucket))
    path = measurement(service.measurements, NAME)
    comment = "Schnitt über die ganze Länge. " * 4000  # ~120 kB of JSON
    append_metadata(path, "post", {"version": "1", "parameters": {"comment": comment}})
    with tables.open_file(str(path), "r") as h5:
        assert "/post_metadata" in h5  # the array, not the attribute
        assert "post_metadata" not in h5.root.acceleration.attrs._v_attrnames
    wait_until(lambda: service.cloud_state()["healthy"], what="healthy dataspace")

    job = service.wait_job(upload(service))
    assert job.state == "done", job.last_error

    client = s3_client(s3_endpoint)
    stored = client.get_object(Bucket=bucket, Key=f"site-a/{NAME}")
    sidecar = unquote(stored["Metadata"]["icoapi-metadata-object"])
    document = json.loads(client.get_object(Bucket=bucket, Key=sidecar)["Body"].read())
    attributes = document["attributes"]
    assert attributes["post_metadata"]["parameters"]["comment"] == comment
    assert attributes["pre_metadata"]["parameters"]["tool_pictures"] == 2
