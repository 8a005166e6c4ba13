"""Benchmark the measurement-file routes under load: ``GET /files`` with 100 and
10,000 files while 20 clients also ask for ``/state`` and ``/sensor``.

Run: ``.venv/bin/python bench/bench_files.py`` (short default: 5 s per folder size);
``--duration 30`` for the full run, ``--analyze 10,60`` to also stream the analyze
view of a 10- and a 60-minute file (written straight with PyTables).

The service runs as ``python -m icoapi`` of this checkout in a process of its own
(CAN on an unused virtual bus), on a data folder of its own. Per folder size it
prints the first (cold) listing, then per route p50/p99 latency and requests per
second of the loaded phase, and the CPU the service used (cores). The analyze
part prints stream bytes, seconds and the service's peak RSS.

Figures only, no asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import tables

ROOT = Path(__file__).resolve().parents[1]
ROUTES = ("/files", "/state", "/sensor")
SAMPLE_RATE = 9523.81


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_file(path: Path, rows: int, start_time: str, noise: bool = False) -> None:
    """A measurement file in the service's layout (3 channels)."""
    with tables.open_file(str(path), "w", title="STH Measurement Data") as h5:
        description = {
            "counter": tables.UInt8Col(pos=0),
            "timestamp": tables.UInt64Col(pos=1),
            "x": tables.Float32Col(pos=2),
            "y": tables.Float32Col(pos=3),
            "z": tables.Float32Col(pos=4),
        }
        table = h5.create_table(
            "/",
            "acceleration",
            description,
            title="Sensor Node Data",
            filters=tables.Filters(complevel=4, complib="zlib"),
            expectedrows=max(rows, 1000),
        )
        generator = np.random.default_rng(1)
        block = 1_000_000
        for first in range(0, rows, block):
            index = np.arange(first, min(first + block, rows))
            data = np.zeros(len(index), dtype=table.dtype)
            data["counter"] = index % 256
            data["timestamp"] = (index * (1e6 / SAMPLE_RATE)).astype(np.uint64)
            for number, column in enumerate("xyz"):
                signal = np.sin(index / (3000 + 1000 * number))
                if noise:
                    signal = signal + generator.normal(0, 0.05, len(index))
                data[column] = signal
            table.append(data)
        for key, value in {
            "icoapi_version": "bench",
            "Start_Time": start_time,
            "sample_rate": SAMPLE_RATE,
            "measurement_status": "completed",
            "pre_metadata": json.dumps({"version": "1", "profile": "p", "parameters": {}}),
        }.items():
            table.attrs[key] = value


class Service:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        environment = {
            **os.environ,
            "CAN_INTERFACE": "virtual",
            "CAN_CHANNEL": f"bench-{self.port}",
            "ICOAPI_DATA_DIR": str(data_dir),
            "VITE_API_HOSTNAME": "127.0.0.1",
            "VITE_API_PORT": str(self.port),
            "LOG_LEVEL": "WARNING",
            "LOG_LEVEL_UVICORN": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "icoapi"],
            env=environment,
            cwd=data_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.info = psutil.Process(self.process.pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("service did not start")

    def cpu_seconds(self) -> float:
        times = self.info.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def _get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str
) -> int:
    """One keep-alive HTTP/1.1 GET; returns the status (the body is read and dropped).
    A minimal client, so the figures are the service's, not a client library's."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    await reader.readexactly(length)
    return status


async def load(url: str, clients: int, duration: float) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {route: [] for route in ROUTES}
    errors = 0
    deadline = time.perf_counter() + duration
    address = httpx.URL(url)
    prefix = address.path.rstrip("/")
    host = f"{address.host}:{address.port}"

    async def client(number: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(address.host, address.port)
        reader._limit = 2**24  # type: ignore[attr-defined]  # long header lines are fine
        try:
            turn = number
            while time.perf_counter() < deadline:
                route = ROUTES[turn % len(ROUTES)]
                turn += 1
                start = time.perf_counter()
                if await _get(reader, writer, host, prefix + route) != 200:
                    errors += 1
                latencies[route].append(time.perf_counter() - start)
        finally:
            writer.close()

    await asyncio.gather(*(client(number) for number in range(clients)))
    if errors:
        print(f"  ({errors} answers other than 200)")
    return latencies


def bench_listing(count: int, clients: int, duration: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        measurements = data_dir / "measurements"
        measurements.mkdir()
        template = data_dir / "template.hdf5"
        write_file(template, 1000, "2026-01-01T00:00:00")
        for number in range(count):
            # hard links: 10,000 names cost no disk; each name is its own entry
            os.link(template, measurements / f"measurement {number:05d}__2026.hdf5")
        service = Service(data_dir)
        try:
            start = time.perf_counter()
            listing = httpx.get(f"{service.url}/files", timeout=600)
            cold = time.perf_counter() - start
            assert len(listing.json()["files"]) == count
            start = time.perf_counter()
            httpx.get(f"{service.url}/files", timeout=600)
            warm = time.perf_counter() - start
            print(
                f"{count} files: first listing {cold * 1000:.0f} ms, "
                f"second {warm * 1000:.1f} ms ({len(listing.content) / 1e6:.2f} MB)"
            )
            cpu = service.cpu_seconds()
            own = time.process_time()
            wall = time.perf_counter()
            latencies = asyncio.run(load(service.url, clients, duration))
            wall = time.perf_counter() - wall
            cores = (service.cpu_seconds() - cpu) / wall
            client_cores = (time.process_time() - own) / wall
        finally:
            service.stop()
    total = sum(len(values) for values in latencies.values())
    print(
        f"  {clients} clients for {duration:.0f} s: {total / wall:.0f} requests/s, "
        f"service CPU {cores:.2f} cores, bench clients {client_cores:.2f}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'route':8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for route, values in latencies.items():
        if not values:
            continue
        p50, p99 = np.percentile(np.array(values) * 1000, [50, 99])
        print(f"  {route:8} {p50:8.1f} {p99:8.1f} {len(values) / wall:8.1f}")


def bench_analyze(minutes: int) -> None:
    rows = int(minutes * 60 * SAMPLE_RATE / 3)  # 3 channels: one row per frame of 3 values
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        measurements = data_dir / "measurements"
        measurements.mkdir()
        start = time.perf_counter()
        path = measurements / f"long {minutes} min.hdf5"
        write_file(path, rows, "2026-01-01T00:00:00", noise=True)
        made = time.perf_counter() - start
        file_size = path.stat().st_size
        service = Service(data_dir)
        try:
            rss_before = service.info.memory_info().rss
            peak = rss_before
            size = 0
            start = time.perf_counter()
            with httpx.stream("GET", f"{service.url}/files/analyze/{path.name}", timeout=600) as r:
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    peak = max(peak, service.info.memory_info().rss)
            seconds = time.perf_counter() - start
        finally:
            service.stop()
    print(
        f"analyze {minutes} min ({rows:,} rows, {file_size / 1e6:.0f} MB file written in "
        f"{made:.0f} s): {size / 1e6:.2f} MB in {seconds:.1f} s, "
        f"service RSS {rss_before / 1e6:.0f} → peak {peak / 1e6:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load (5)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--files", default="100,10000", help="folder sizes (100,10000)")
    parser.add_argument("--analyze", default="", help="minutes of analyze files, e.g. 10,60")
    options = parser.parse_args()
    print(f"bench_files ({ROOT.name}):")
    for count in (int(value) for value in options.files.split(",") if value):
        bench_listing(count, options.clients, options.duration)
    for minutes in (int(value) for value in options.analyze.split(",") if value):
        bench_analyze(minutes)


if __name__ == "__main__":
    main()
