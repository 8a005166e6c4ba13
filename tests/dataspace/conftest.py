"""Fixtures of the dataspace tests: an S3 server per module, a service per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.dataspace.support import (
    FAST,
    TridentStandIn,
    moto_server,
    new_bucket,
    wait_until,
    write_config,
)
from tests.support import LiveServer, make_settings


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    return new_bucket(s3_endpoint)


@pytest.fixture
def trident(s3_endpoint: str, bucket: str) -> Iterator[TridentStandIn]:
    stand_in = TridentStandIn(s3_endpoint, bucket)
    yield stand_in
    stand_in.close()


@dataclass
class Service:
    server: LiveServer
    http: httpx.Client
    data: Path

    @property
    def measurements(self) -> Path:
        return self.data / "measurements"

    @property
    def log_text(self) -> str:
        return (self.data / "logs" / "icodaq.log").read_text("utf-8")

    def cloud_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get("/state").json()["cloud"]
        return state

    def wait_job(self, job_id: int, timeout: float = 60) -> Any:
        """The job once it is finished (polled through the API)."""
        finished = ("done", "failed", "cancelled")

        def job() -> dict[str, Any] | None:
            answer: dict[str, Any] = self.http.get(f"/cloud/queue/{job_id}").json()
            return answer if answer["state"] in finished else None

        return SimpleNamespace(**wait_until(job, timeout, f"job {job_id} to finish"))

    def file_cloud(self, name: str) -> dict[str, Any]:
        files = self.http.get("/files").json()["files"]
        cloud: dict[str, Any] = next(f["cloud"] for f in files if f["name"] == name)
        return cloud


@pytest.fixture
def start_service(tmp_path: Path, live_server_factory: Any) -> Iterator[Callable[..., Service]]:
    clients: list[httpx.Client] = []

    def start(
        connection: dict[str, Any] | None = None,
        data: Path | None = None,
        options: Any = FAST,
        settings: Any = None,
        **state: Any,
    ) -> Service:
        data = data or tmp_path / "data"
        if connection is not None:
            write_config(data, connection)
        server = live_server_factory(
            settings or make_settings(data), dataspace_options=options, **state
        )
        http = httpx.Client(base_url=f"{server.url}/api/v1", timeout=30)
        clients.append(http)
        return Service(server, http, data)

    yield start
    for http in clients:
        http.close()
