"""Endurance benchmark (``make bench``: 2 minutes; ``--minutes 60`` for a shift's hour).

The service runs in this process under uvicorn with the simulator; a real S3
server (moto) runs in a process of its own on loopback and the service uploads
each finished file to it (``auto_upload``); 3 WebSocket stream clients read the
live stream from another process. One measurement at the default rate runs for
``--minutes``; then the analyze stream of its file is read once.

Prints: frames and loss of the file, the service's RSS series (every 5 % of the
run) and its slope after a warm-up (first 20 %), the peak extra disk next to the
measurement file (journal files, sampled every 0.2 s), the CPU of the writer
thread per second of measurement, the upload queue and the upload result, and
for the analyze stream bytes, seconds and the RSS while it streams. Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import tables
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_dataspace import KEY_ID, SECRET, s3, serve_s3, wait_for  # noqa: E402
from bench.bench_measurement import client_process, instructions, thread_cpu  # noqa: E402
from icoapi.api import create_app  # noqa: E402
from icoapi.simulator import SimulatorConfig  # noqa: E402
from tests.support import LiveServer, free_port, make_settings, simulator_of  # noqa: E402

MIB = 1024 * 1024


def dataspace_document(endpoint: str, bucket: str) -> dict[str, Any]:
    return {
        "info": {
            "schema_name": "dataspace_schema",
            "schema_version": "1.0.0",
            "config_name": "Endurance",
            "config_version": "1",
            "config_date": "2025-01-01T00:00:00+00:00",
        },
        "connection": {
            "enabled": True,
            "connector": "s3",
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "bucket": bucket,
            "bucket_folder": "endurance",
            "access_key_id": KEY_ID,
            "secret_access_key": SECRET,
            "auto_upload": True,
        },
    }


class DiskWatch(threading.Thread):
    """Samples the bytes of hidden side files (journals) in the measurement folder."""

    def __init__(self, folder: Path) -> None:
        super().__init__(name="bench-disk", daemon=True)
        self.folder = folder
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            total = 0
            for path in self.folder.glob(".*"):
                with contextlib.suppress(FileNotFoundError):
                    total += path.stat().st_size
            self.peak = max(self.peak, total)


def slope(series: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time, bytes per minute."""
    count = len(series)
    if count < 2:
        return 0.0
    mean_t = sum(t for t, _ in series) / count
    mean_r = sum(r for _, r in series) / count
    num = sum((t - mean_t) * (r - mean_r) for t, r in series)
    den = sum((t - mean_t) ** 2 for t, _ in series) or 1.0
    return num / den * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=3)
    args = parser.parse_args()
    seconds = max(10, round(args.minutes * 60))
    s3_port = free_port()
    context = multiprocessing.get_context("spawn")
    moto = context.Process(target=serve_s3, args=(s3_port,), daemon=True)
    moto.start()
    try:
        run(f"http://127.0.0.1:{s3_port}", seconds, args.clients)
    finally:
        moto.terminate()
        moto.join(10)


def run(endpoint: str, seconds: int, clients: int) -> None:
    bucket = f"endurance-{uuid.uuid4().hex[:8]}"
    client = s3(endpoint)
    wait_for(lambda: client.create_bucket(Bucket=bucket), 60, "the S3 server")
    print(
        f"icoapi endurance benchmark: {seconds / 60:g} min at the default rate, "
        f"{clients} stream clients, auto-upload to a loopback S3 server"
    )
    with tempfile.TemporaryDirectory(prefix="icoapi-endurance-") as folder:
        data = Path(folder)
        (data / "config").mkdir()
        (data / "config" / "dataspace.yaml").write_text(
            yaml.safe_dump(dataspace_document(endpoint, bucket)), "utf-8"
        )
        config = SimulatorConfig.default(scan_delay=0.05, connect_delay=0.1, seed=1)
        app = create_app(
            make_settings(
                data, CAN_INTERFACE="simulator", LOG_LEVEL="WARNING", LOG_LEVEL_UVICORN="WARNING"
            ),
            can_bus_options={"config": config},
        )
        server = LiveServer(app)
        server.start()
        try:
            measure(app, server, data, seconds, clients, client, bucket)
        finally:
            server.stop()


def measure(
    app: Any,
    server: LiveServer,
    data: Path,
    seconds: int,
    clients: int,
    s3_client: Any,
    bucket: str,
) -> None:
    http = httpx.Client(base_url=f"{server.url}/api/v1", timeout=60)
    process = psutil.Process()
    mac = simulator_of(app).config.devices[0].mac
    assert http.put("/sth/connect", json={"mac_address": mac}).status_code == 200
    wait_for(lambda: http.get("/state").json()["cloud"]["healthy"], 60, "a healthy dataspace")
    measurements = app.state.paths.measurements
    context = multiprocessing.get_context("spawn")
    ready, results = context.Event(), context.Queue()
    readers = context.Process(
        target=client_process,
        args=(f"{server.ws_url}/api/v1/measurement/stream", clients, ready, results),
        daemon=True,
    )
    readers.start()
    ready.wait(60)
    disk = DiskWatch(measurements)
    disk.start()
    response = http.post("/measurement/start", json=instructions(mac, seconds))
    assert response.status_code == 200, response.text
    name = response.json()["data"]["name"]
    started = time.monotonic()
    rss: list[tuple[float, int]] = []
    writer_cpu = 0.0
    queue_peak = 0
    step = seconds / 20
    while True:
        elapsed = time.monotonic() - started
        rss.append((elapsed, process.memory_info().rss))
        writer_cpu = max(writer_cpu, thread_cpu("hdf5-writer"))
        state = http.get("/state").json()
        queue_peak = max(queue_peak, len(http.get("/cloud/queue").json().get("jobs", [])))
        if not state["measurement_status"]["running"] and elapsed > 5:
            break
        time.sleep(min(step, 5.0))
    seconds_run = time.monotonic() - started
    disk.stop.set()
    readers.join(120)
    received = results.get(timeout=60) if not results.empty() else {"samples": []}
    path = measurements / f"{name}.hdf5"
    with tables.open_file(str(path)) as h5:
        attrs = h5.root.acceleration.attrs
        frames, lost, rows = int(attrs["frames"]), int(attrs["lost_frames"]), int(attrs["rows"])
        status = str(attrs["measurement_status"])
    size = path.stat().st_size
    upload = wait_for(lambda: _uploaded(s3_client, bucket, path.name), 600, "the upload")
    jobs = http.get("/cloud/queue").json()

    warm = [entry for entry in rss if entry[0] >= seconds_run * 0.2]
    print(f"  file: {frames} frames, {rows} rows, {size / MIB:.1f} MiB, status {status!r}")
    print(f"  loss: {lost} frames lost ({lost / max(frames + lost, 1) * 100:.3f} %)")
    print(
        "  stream clients got samples: "
        + ", ".join(str(count) for count in received.get("samples", []))
    )
    print(
        "  RSS (MiB) every 5 %: "
        + " ".join(f"{rss[round(i * (len(rss) - 1) / 20)][1] / MIB:.0f}" for i in range(21))
    )
    print(
        f"  RSS slope after warm-up (20 %): {slope(warm) / MIB:+.3f} MiB/min "
        f"({(warm[-1][1] - warm[0][1]) / MIB:+.1f} MiB from {warm[0][0]:.0f} s to "
        f"{warm[-1][0]:.0f} s)"
        if warm
        else "  RSS slope: too short"
    )
    print(
        f"  peak extra disk next to the file (journals): {disk.peak / 1024:.0f} KiB "
        f"= {disk.peak / (rows / seconds_run * 13):.1f} s of rows"
    )
    print(
        f"  writer thread CPU: {writer_cpu:.1f} s = {writer_cpu / seconds_run * 100:.2f} % "
        "of a core"
    )
    print(
        f"  upload: {upload} bytes in S3; queue peak {queue_peak} jobs, "
        f"{len(jobs.get('jobs', []))} jobs listed after"
    )
    analyze(http, process, path.name)
    http.close()


def _uploaded(client: Any, bucket: str, name: str) -> int | None:
    try:
        head = client.head_object(Bucket=bucket, Key=f"endurance/{name}")
    except Exception:
        return None
    return int(head["ContentLength"])


def analyze(http: httpx.Client, process: psutil.Process, name: str) -> None:
    before = process.memory_info().rss
    peak = before
    size = 0
    started = time.perf_counter()
    with http.stream("GET", f"/files/analyze/{name}", timeout=600) as response:
        for chunk in response.iter_bytes():
            size += len(chunk)
            peak = max(peak, process.memory_info().rss)
    seconds = time.perf_counter() - started
    print(
        f"  analyze stream: {size / MIB:.1f} MiB in {seconds:.1f} s; service RSS "
        f"{before / MIB:.0f} MiB before, {peak / MIB:.0f} MiB peak"
    )


if __name__ == "__main__":
    main()
