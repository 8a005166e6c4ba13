"""End to end: a measurement on the simulator with ``auto_upload: true`` ends
as an object in the bucket with the same bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.dataspace.conftest import Service
from tests.dataspace.support import s3_client, s3_connection, wait_until
from tests.measurement.helpers import connect_device, instructions, start, wait_idle
from tests.support import make_settings, simulator_of, simulator_options


def test_finished_measurement_is_uploaded_automatically(
    start_service: Callable[..., Service], s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    service = start_service(
        s3_connection(s3_endpoint, bucket, auto_upload=True),
        data=data,
        settings=make_settings(data, CAN_INTERFACE="simulator"),
        can_bus_options=simulator_options(),
    )
    wait_until(lambda: service.cloud_state()["healthy"], what="healthy dataspace")
    assert service.cloud_state()["auto_upload"] is True
    simulator = simulator_of(service.server.app)
    mac = simulator.config.devices[0].mac
    http: httpx.Client = service.http
    connect_device(http, mac)
    name = start(http, instructions(mac, time=1))["data"]["name"]
    wait_idle(service.server)

    def finished_job() -> dict[str, object] | None:
        jobs = http.get("/cloud/queue").json()["jobs"]
        return next((j for j in jobs if j["name"] == f"{name}.hdf5"), None)

    job = wait_until(finished_job, what="the automatic upload job")
    result = service.wait_job(int(job["id"]))  # type: ignore[call-overload]
    assert result.state == "done", result.last_error
    path = service.measurements / f"{name}.hdf5"
    stored = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=f"site-a/{name}.hdf5")
    assert stored["Body"].read() == path.read_bytes()
    assert service.file_cloud(f"{name}.hdf5")["status"] == "up_to_date"
