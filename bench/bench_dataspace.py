"""Benchmark of dataspace uploads (``make bench``): prints figures, asserts nothing.

An S3 server (moto) runs in its own process on loopback, the service (``python -m
icoapi``) in another. A 1 GiB measurement file (``--size-mib`` to change) is
uploaded through the service (``POST /cloud/upload`` until the job is done,
checksum check included) and with boto3's own ``upload_file`` (default transfer
settings) to the same server, in the same run.

Reports:
* throughput of both and their ratio (service / boto3);
* the service process's RSS before and at its peak during the upload.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import psutil
import tables
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import free_port  # noqa: E402

MIB = 1024 * 1024
KEY_ID = "AKIDBENCHBENCH"
SECRET = "bench-secret"


def serve_s3(port: int) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    while True:
        time.sleep(3600)


def s3(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


def write_file(path: Path, size: int) -> None:
    """An HDF5 measurement-like file of about ``size`` bytes (incompressible)."""
    rng = np.random.default_rng(0)
    with tables.open_file(str(path), "w") as h5:
        table = h5.create_table("/", "acceleration", {"counter": tables.UInt8Col()})
        table.attrs["pre_metadata"] = '{"version": "1", "profile": "bench", "parameters": {}}'
        array = h5.create_earray("/", "payload", tables.UInt8Atom(), (0,), expectedrows=size)
        remaining = size
        while remaining > 0:
            chunk = min(remaining, 64 * MIB)
            array.append(rng.integers(0, 256, chunk, dtype=np.uint8))
            remaining -= chunk


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # not up yet
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()

    s3_port = free_port()
    moto = multiprocessing.get_context("spawn").Process(
        target=serve_s3, args=(s3_port,), daemon=True
    )
    moto.start()
    try:
        run(s3_port, args.size_mib * MIB)
    finally:
        moto.terminate()
        moto.join(10)


def run(s3_port: int, size: int) -> None:
    endpoint = f"http://127.0.0.1:{s3_port}"
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    client = s3(endpoint)
    wait_for(lambda: client.create_bucket(Bucket=bucket), 60, "the S3 server")

    with tempfile.TemporaryDirectory(prefix="icoapi-bench-") as folder:
        data = Path(folder) / "data"
        (data / "config").mkdir(parents=True)
        (data / "measurements").mkdir()
        name = "bench.hdf5"
        path = data / "measurements" / name
        write_file(path, size)
        size = path.stat().st_size
        document = {
            "info": {
                "schema_name": "dataspace_schema",
                "schema_version": "1.0.0",
                "config_name": "Bench",
                "config_version": "1",
                "config_date": "2025-01-01T00:00:00+00:00",
            },
            "connection": {
                "enabled": True,
                "connector": "s3",
                "endpoint_url": endpoint,
                "region": "us-east-1",
                "bucket": bucket,
                "bucket_folder": "bench",
                "access_key_id": KEY_ID,
                "secret_access_key": SECRET,
            },
        }
        (data / "config" / "dataspace.yaml").write_text(yaml.safe_dump(document), "utf-8")

        def baseline() -> float:
            started = time.perf_counter()
            client.upload_file(str(path), bucket, f"baseline/{name}")
            seconds = time.perf_counter() - started
            client.delete_object(Bucket=bucket, Key=f"baseline/{name}")
            return seconds

        # boto3 before and after the service: the machine's load drifts.
        boto_runs = [baseline()]
        port = free_port()
        environment = {
            **os.environ,
            "ICOAPI_DATA_DIR": str(data),
            "VITE_API_HOSTNAME": "127.0.0.1",
            "VITE_API_PORT": str(port),
            "CAN_INTERFACE": "virtual",
            "CAN_CHANNEL": f"bench-{uuid.uuid4().hex}",
            "LOG_LEVEL": "WARNING",
        }
        service = subprocess.Popen(
            [sys.executable, "-m", "icoapi"], cwd=ROOT, env=environment, stdout=subprocess.DEVNULL
        )
        try:
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30)
            wait_for(
                lambda: http.get("/state").json()["cloud"]["healthy"], 60, "a healthy dataspace"
            )
            process = psutil.Process(service.pid)
            rss_before = process.memory_info().rss
            started = time.perf_counter()
            # wait=0: answered at once, so the RSS is sampled during the upload.
            answer = http.post("/cloud/upload", json={"filename": name}, params={"wait": 0})
            job_id = answer.json()["id"]
            peak = rss_before
            while True:
                peak = max(peak, process.memory_info().rss)
                job = http.get(f"/cloud/queue/{job_id}").json()
                if job["state"] in ("done", "failed", "cancelled"):
                    break
                time.sleep(0.1)
            service_seconds = time.perf_counter() - started
            if job["state"] != "done":
                raise SystemExit(f"upload through the service: {job['state']}: {job['last_error']}")
            client.delete_object(Bucket=bucket, Key=f"bench/{name}")
        finally:
            service.terminate()
            service.wait(30)

        boto_runs.append(baseline())
    boto_seconds = sum(boto_runs) / len(boto_runs)

    mib = size / MIB
    print(f"file size:                  {mib:.0f} MiB")
    print(
        f"through the service:        {mib / service_seconds:.1f} MiB/s "
        f"({service_seconds:.1f} s, incl. queueing and checksum check)"
    )
    print(
        f"boto3 upload_file:          {mib / boto_seconds:.1f} MiB/s (mean of "
        + ", ".join(f"{seconds:.1f} s" for seconds in boto_runs)
        + ", before and after)"
    )
    print(f"ratio service / boto3:      {boto_seconds / service_seconds:.2f}")
    print(
        f"service RSS:                {rss_before / MIB:.0f} MiB before, "
        f"{peak / MIB:.0f} MiB peak during the upload (+{(peak - rss_before) / MIB:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
