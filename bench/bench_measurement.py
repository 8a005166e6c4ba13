"""Benchmark of the measurement pipeline (``make bench``): prints figures, asserts nothing.

The service runs in this process under uvicorn with the simulator on the in-process
virtual bus. WebSocket clients run in a separate process, so their CPU is not
counted. The API's own CPU excludes the simulator's threads (named ``icosim-*``),
measured with per-thread CPU clocks, and the bench's own threads (``bench-*``).

Reports:
* API CPU per second of measurement at the default rate with 1 and 10 clients;
* end-to-end latency (the time the simulator scheduled a frame -> WebSocket receipt of
  its newest sample) p50/p99 with 1 and 10 clients;
* the highest rate with 0 loss in the file (ADC settings for multiples of the
  default rate: the service refuses files whose data rate differs from the settings);
* RSS growth over a long measurement (300 s, ``--rss-seconds`` to change).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import tables

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from icoapi.api import create_app  # noqa: E402
from icoapi.simulator import SimulatorConfig  # noqa: E402
from tests.measurement.helpers import instructions as measurement_instructions  # noqa: E402
from tests.support import LiveServer, make_settings, simulator_of  # noqa: E402

DEFAULT_SAMPLE_RATE = 38_400_000 / (3 * 21 * 64)


# Rate multipliers and the ADC settings (prescaler, oversampling rate) that give
# them: sample rate = 38.4 MHz / ((prescaler + 1) * (8 + 13) * oversampling). The
# device runs at the rate its settings say (the service cross-checks that).
ADC_FOR_MULTIPLIER = {
    1: (2, 64),
    2: (2, 32),
    4: (2, 16),
    6: (1, 16),
    8: (2, 8),
    12: (1, 8),
    16: (2, 4),
    24: (1, 4),
    32: (2, 2),
    48: (1, 2),
}


def instructions(mac: str, seconds: int | None, multiplier: int = 1) -> dict[str, Any]:
    body = measurement_instructions(mac, name="bench", time=seconds, meta=None)
    prescaler, oversampling = ADC_FOR_MULTIPLIER[multiplier]
    body["adc"].update(prescaler=prescaler, oversampling_rate=oversampling)
    return body


# -- client process -------------------------------------------------------------------


def client_process(url: str, clients: int, ready: Any, results: Any) -> None:
    """Connect ``clients`` sockets; for each message record (receipt epoch, newest
    sample timestamp). Runs until the server closes the sockets."""
    from websockets.sync.client import connect

    sockets = [connect(url, max_size=None, legacy=True) for _ in range(clients)]
    records: list[list[tuple[float, float]]] = [[] for _ in sockets]
    samples = [0] * clients

    def read(index: int) -> None:
        for text in sockets[index]:
            received = time.time()
            entries = json.loads(text)
            if not isinstance(entries, list):
                continue
            newest = None
            for entry in entries:
                if entry["first"] is not None:
                    samples[index] += 1
                    newest = entry["timestamp"]
            if newest is not None:
                records[index].append((received, newest))

    threads = [threading.Thread(target=read, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    ready.set()
    for thread in threads:
        thread.join()
    results.put({"records": records, "samples": samples})


# -- measurement helpers --------------------------------------------------------------


def thread_cpu(names_prefix: str) -> float:
    total = 0.0
    for thread in threading.enumerate():
        if thread.name.startswith(names_prefix) and thread.ident is not None:
            try:
                clock = time.pthread_getcpuclockid(thread.ident)
                total += time.clock_gettime(clock)
            except OSError:
                pass  # the thread just ended
    return total


def not_api_cpu() -> float:
    """CPU seconds of the simulator's threads and of the bench's own."""
    return thread_cpu("icosim") + thread_cpu("bench-")


class Bench:
    def __init__(self, data: Path) -> None:
        config = SimulatorConfig.default(scan_delay=0.05, connect_delay=0.1, seed=1)
        self.app = create_app(
            make_settings(
                data, CAN_INTERFACE="simulator", LOG_LEVEL="WARNING", LOG_LEVEL_UVICORN="WARNING"
            ),
            can_bus_options={"config": config},
        )
        self.server = LiveServer(self.app)
        self.server.start()
        self.http = httpx.Client(base_url=f"{self.server.url}/api/v1", timeout=60)
        self.simulator = simulator_of(self.app)
        # The ramp measures the service, not a 1 Mbit/s bus (at most 6250 frames/s,
        # 19 k samples/s on one channel): the simulator's bus ceiling is off.
        self.simulator.faults.bus_bitrate = None
        self.mac = self.simulator.config.devices[0].mac
        assert self.http.put("/sth/connect", json={"mac_address": self.mac}).status_code == 200

    def close(self) -> None:
        self.http.close()
        self.server.stop()

    def wait_idle(self) -> None:
        self.server.run_in_loop(self.app.state.measurement.wait_idle(600), 620)

    def run(
        self,
        seconds: int,
        clients: int,
        window: tuple[float, float] | None = None,
        multiplier: int = 1,
    ) -> dict[str, Any]:
        """One measurement with ``clients`` stream clients at ``multiplier`` times
        the default rate; CPU over ``window`` (seconds after start)."""
        context = multiprocessing.get_context("spawn")
        ready, results = context.Event(), context.Queue()
        process = None
        if clients:
            url = f"{self.server.ws_url}/api/v1/measurement/stream"
            process = context.Process(target=client_process, args=(url, clients, ready, results))
            process.start()
            ready.wait(60)
        response = self.http.post(
            "/measurement/start", json=instructions(self.mac, seconds, multiplier)
        )
        assert response.status_code == 200, response.text
        name = response.json()["data"]["name"]
        started = time.monotonic()
        device = self.simulator.devices[0]
        while device.streamer is None or not device.streamer.started_wall:
            time.sleep(0.001)
        # When the simulator scheduled frame 0: the true time of the first sample.
        stream_start = device.streamer.started_wall
        # When the device handled the stop request (the service then verifies the
        # stop and closes the file; that is not streaming time).
        stream_end: list[float] = []

        def watch_stop() -> None:
            while device.streaming:
                time.sleep(0.001)
            stream_end.append(time.monotonic())

        # The watcher polls every millisecond (about 1.5 % of a core): it runs
        # only outside the CPU window, which ends before the measurement does,
        # and its thread is not counted as the API's either way.
        watcher = threading.Thread(target=watch_stop, name="bench-watch-stop", daemon=True)
        cpu = None
        if window is not None:
            time.sleep(window[0])
            process_0, other_0, wall_0 = time.process_time(), not_api_cpu(), time.monotonic()
            time.sleep(window[1] - window[0])
            process_1, other_1, wall_1 = time.process_time(), not_api_cpu(), time.monotonic()
            cpu = ((process_1 - process_0) - (other_1 - other_0)) / (wall_1 - wall_0)
        watcher.start()
        self.wait_idle()
        watcher.join(10)
        elapsed = (stream_end[0] if stream_end else time.monotonic()) - started
        client_data = results.get(timeout=120) if process else None
        if process:
            process.join(30)
        path = self.app.state.paths.measurements / f"{name}.hdf5"
        with tables.open_file(str(path)) as h5file:
            attributes = h5file.root.acceleration.attrs
            dataloss = float(attributes["dataloss"])
            status = str(attributes["measurement_status"])
            rows = h5file.root.acceleration.nrows
        path.unlink()
        latencies: list[float] = []
        # The newest entry of a message is the last of the three samples of its
        # frame, streamed 2 sample periods after the frame's own time.
        last_sample = 2 / (DEFAULT_SAMPLE_RATE * multiplier)
        if client_data:
            for records in client_data["records"]:
                latencies += [
                    received - (stream_start + newest - last_sample) for received, newest in records
                ]
        return {
            "cpu": cpu,
            "dataloss": dataloss,
            "status": status,
            "rows": rows,
            "elapsed": elapsed,
            "latencies": latencies,
            "client_samples": client_data["samples"] if client_data else [],
        }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rss-seconds", type=int, default=300)
    parser.add_argument("--cpu-seconds", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        bench = Bench(Path(folder))
        try:
            print(
                f"icoapi measurement benchmark (default rate {DEFAULT_SAMPLE_RATE:.0f} "
                "samples/s, single channel, simulator in-process)"
            )
            for clients in (1, 10):
                result = bench.run(args.cpu_seconds, clients, window=(3, args.cpu_seconds - 2))
                lat = result["latencies"]
                streamed = min(result["client_samples"]) if result["client_samples"] else 0
                print(
                    f"  {clients:2d} client(s): API CPU {result['cpu'] * 100:5.1f} % of one core, "
                    f"latency p50 {percentile(lat, 0.5) * 1000:5.1f} ms "
                    f"p99 {percentile(lat, 0.99) * 1000:5.1f} ms, "
                    f"streamed {streamed}/{result['rows']} samples, "
                    f"file loss {result['dataloss'] * 100:.2f} %"
                )

            for clients in (1, 10):
                best = 0.0
                for multiplier in ADC_FOR_MULTIPLIER:
                    result = bench.run(5, clients, multiplier=multiplier)
                    rate = DEFAULT_SAMPLE_RATE * multiplier
                    # The simulator stamps frames with their scheduled times; if it
                    # (or the service) fell behind, the run takes longer by the clock.
                    achieved = result["rows"] / result["elapsed"]
                    ok = (
                        result["dataloss"] == 0
                        and result["status"] == "completed"
                        and achieved >= 0.9 * rate
                    )
                    print(
                        f"    x{multiplier:<3d} {rate / 1000:6.1f} k samples/s, {clients:2d} "
                        f"client(s): loss {result['dataloss'] * 100:5.2f} %, {result['status']}, "
                        f"achieved {achieved / 1000:.1f} k samples/s by the clock"
                    )
                    if not ok:
                        break
                    best = rate
                label = f"{clients:2d} client(s)"
                print(f"  highest rate with 0 loss, {label}: {best / 1000:.1f} k samples/s")

            process = psutil.Process(os.getpid())
            context = multiprocessing.get_context("spawn")
            ready, results = context.Event(), context.Queue()
            url = f"{bench.server.ws_url}/api/v1/measurement/stream"
            client = context.Process(target=client_process, args=(url, 1, ready, results))
            client.start()
            ready.wait(60)
            bench.http.post("/measurement/start", json=instructions(bench.mac, args.rss_seconds))
            time.sleep(min(30, args.rss_seconds / 5))
            rss_start = process.memory_info().rss
            samples = []
            deadline = time.monotonic() + args.rss_seconds - min(30, args.rss_seconds / 5) - 1
            while time.monotonic() < deadline:
                time.sleep(5)
                samples.append(process.memory_info().rss)
            rss_end = process.memory_info().rss
            bench.wait_idle()
            results.get(timeout=120)
            client.join(30)
            print(
                f"  RSS over a {args.rss_seconds} s measurement: "
                f"start {rss_start / 2**20:.1f} MiB, end {rss_end / 2**20:.1f} MiB, "
                f"growth {(rss_end - rss_start) / 2**20:+.1f} MiB "
                f"(max {max(samples or [rss_end]) / 2**20:.1f} MiB)"
            )
        finally:
            bench.close()


if __name__ == "__main__":
    main()
