"""Upload metrics against a real S3 server (moto) on loopback: bytes of
finished uploads, failed attempts, jobs by state and the dataspace's health."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.dataspace.support import (
    FAST,
    CorruptingProxy,
    measurement,
    moto_server,
    new_bucket,
    s3_connection,
    wait_until,
    write_config,
)
from tests.metrics.support import NotifyListener, scrape
from tests.support import AppServices, LiveServer, make_settings

NAME = "milling__2025-03-01_10-15-00.hdf5"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def test_upload_bytes_failures_and_jobs(
    tmp_path: Path, live_server_factory: Callable[..., LiveServer], s3_endpoint: str
) -> None:
    proxy = CorruptingProxy(s3_endpoint)  # flips a byte of each upload while corrupt is set
    try:
        data = tmp_path / "data"
        write_config(data, s3_connection(proxy.url, new_bucket(s3_endpoint)))
        server = live_server_factory(make_settings(data), dataspace_options=FAST)
        dataspace = AppServices(server.app).dataspace
        path = measurement(data / "measurements", NAME)
        with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as http:
            wait_until(lambda: scrape(server.url).value("icoapi_dataspace_healthy") == 1)
            assert scrape(server.url).value("icoapi_upload_bytes_total") == 0

            # Every attempt fails the checksum check: the job gives up.
            proxy.corrupt = True
            response = http.post("/cloud/upload", json={"filename": NAME}, params={"wait": 0})
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            job = server.run_in_loop(dataspace.wait_for_job(job_id, 60), 70)
            assert job.state == "failed"
            failed = scrape(server.url)
            assert failed.value("icoapi_upload_failures_total") == job.attempts >= 1
            assert failed.value("icoapi_upload_jobs", state="failed") == 1
            assert failed.value("icoapi_upload_jobs", state="done") == 0
            assert failed.value("icoapi_upload_bytes_total") == 0

            proxy.corrupt = False
            assert http.post(f"/cloud/queue/{job_id}/retry").status_code == 200
            assert server.run_in_loop(dataspace.wait_for_job(job_id, 60), 70).state == "done"
            done = scrape(server.url)
            assert done.value("icoapi_upload_bytes_total") == path.stat().st_size
            assert done.value("icoapi_upload_jobs", state="done") == 1
            assert done.value("icoapi_upload_jobs", state="failed") == 0
            # Counters never go back: the failed attempts stay counted.
            assert done.value("icoapi_upload_failures_total") == job.attempts
            assert done.value("icoapi_dataspace_enabled") == 1
    finally:
        proxy.close()


def test_systemd_status_says_uploading(
    tmp_path: Path,
    live_server_factory: Callable[..., LiveServer],
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with tempfile.TemporaryDirectory(prefix="icoapi-notify-") as folder:
        address = str(Path(folder) / "notify")
        listener = NotifyListener(address)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        proxy = CorruptingProxy(s3_endpoint)
        try:
            data = tmp_path / "data"
            write_config(data, s3_connection(proxy.url, new_bucket(s3_endpoint)))
            server = live_server_factory(make_settings(data), dataspace_options=FAST)
            listener.wait_for("STATUS=idle")
            measurement(data / "measurements", NAME)
            proxy.hold_puts = True  # the upload waits in its PUT until released
            with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as http:
                response = http.post("/cloud/upload", json={"filename": NAME}, params={"wait": 0})
                assert response.status_code == 202, response.text
            assert proxy.held.wait(30)
            listener.wait_for(f"STATUS=uploading {NAME}")
            proxy.release.set()
            listener.wait_for("STATUS=idle")
        finally:
            proxy.close()
            listener.close()
