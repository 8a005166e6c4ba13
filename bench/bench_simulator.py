"""Benchmark the ICOtronic simulator with the real icotronic client.

Run: ``.venv/bin/python bench/bench_simulator.py`` (about 1-2 minutes).

Prints
  1. the simulator's own CPU cost at the default rate (3175 frames/s, one
     channel): the separate ``python -m icoapi.simulator`` process over TCP
     (psutil), and the streaming thread of an in-process simulator on the
     virtual bus (thread CPU time);
  2. the highest frame rate streamed with 0 data loss while the icotronic
     client keeps up, on the virtual link and on the TCP (socketcand) link,
     stepping the rate multiplier up.

Figures only, no asserts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from icotronic.can import Connection, StreamingConfiguration
from icotronic.can.node.sensor import SensorNode
from netaddr import EUI

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from icoapi.simulator import Simulator, SimulatorConfig, configure_icotronic  # noqa: E402

READY = re.compile(r"ready: socketcand on (?P<host>[\d.]+):(?P<port>\d+)")
MAC = EUI(SimulatorConfig.default().devices[0].mac)
MULTIPLIERS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32)
STEP_SECONDS = 2.0


@dataclass
class StreamResult:
    frames: int
    lost: int
    dataloss: float
    span: float
    """Seconds of stream time (timestamps) received."""
    wall: float
    """Wall-clock seconds it took to receive them."""
    error: str = ""

    @property
    def rate(self) -> float:
        return (self.frames + self.lost - 1) / self.span if self.span > 0 else 0.0

    @property
    def kept_up(self) -> bool:
        return not self.error and self.wall <= self.span * 1.03 + 0.05

    @property
    def sustained(self) -> bool:
        return self.kept_up and self.lost == 0 and self.frames > 1


async def stream(node: SensorNode, seconds: float) -> StreamResult:
    frames = lost = 0
    first_ts = last_ts = 0.0
    first_wall = last_wall = 0.0
    try:
        async with node.open_data_stream(StreamingConfiguration(), timeout=5) as buffer:
            async for data, lost_frames in buffer:
                if frames == 0:
                    first_ts, first_wall = data.timestamp, time.monotonic()
                frames += 1
                lost += lost_frames
                last_ts = data.timestamp
                if last_ts - first_ts >= seconds:
                    last_wall = time.monotonic()
                    break
            dataloss = buffer.dataloss()
    except Exception as error:  # report, don't abort the benchmark
        return StreamResult(frames, lost, 1.0, last_ts - first_ts, 0.0, type(error).__name__)
    return StreamResult(frames, lost, dataloss, last_ts - first_ts, last_wall - first_wall)


@contextmanager
def simulator_process(multiplier: float) -> Iterator[tuple[str, int, int]]:
    """A simulator process serving socketcand on a free port: (host, port, pid)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "icoapi.simulator",
            "--port",
            "0",
            "--rate-multiplier",
            str(multiplier),
            "--log-level",
            "WARNING",
            "--scan-delay",
            "0.05",
            "--connect-delay",
            "0.1",
            # The ramp measures the simulator, not a 1 Mbit/s bus (6250 frames/s).
            "--bus-bitrate",
            "0",
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        while not (match := READY.search(lines.get(timeout=30))):
            pass
        yield match["host"], int(match["port"]), process.pid
    finally:
        process.terminate()
        process.wait(10)


def quiet_logs() -> None:
    logging.getLogger("icotronic").setLevel(logging.ERROR)
    logger = logging.getLogger("icotronic.can.messages")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


# -- 1. CPU cost at the default rate -------------------------------------------


async def cpu_tcp(seconds: float = 5.0) -> None:
    with simulator_process(1.0) as (host, port, pid):
        configure_icotronic("socketcand", "can0", host=host, port=port)
        simulator = psutil.Process(pid)
        async with Connection() as stu, stu.connect_sensor_node(MAC) as node:
            idle_before = simulator.cpu_times()
            idle_wall = time.monotonic()
            await asyncio.sleep(1.0)
            idle = simulator.cpu_times()
            idle_cpu = (idle.user + idle.system - idle_before.user - idle_before.system) / (
                time.monotonic() - idle_wall
            )
            before, wall, client = simulator.cpu_times(), time.monotonic(), time.process_time()
            result = await stream(node, seconds)
            after, elapsed = simulator.cpu_times(), time.monotonic() - wall
            client_cpu = (time.process_time() - client) / elapsed
        quiet_logs()
    cpu = (after.user + after.system - before.user - before.system) / elapsed
    print(
        f"  TCP socketcand, simulator process: {100 * cpu:5.1f} % of one core while streaming "
        f"{result.rate:,.0f} frames/s (idle {100 * max(idle_cpu, 0.0):.1f} %); "
        f"icotronic client process {100 * client_cpu:.1f} %; loss {result.lost}"
    )


async def cpu_virtual(seconds: float = 5.0) -> None:
    with Simulator(SimulatorConfig.default(scan_delay=0.05, connect_delay=0.1)) as simulator:
        configure_icotronic("virtual", simulator.channel)
        async with Connection() as stu, stu.connect_sensor_node(MAC) as node:
            process = time.process_time()
            wall = time.monotonic()
            result = await stream(node, seconds)
            elapsed = time.monotonic() - wall
            total = (time.process_time() - process) / elapsed
        quiet_logs()
        streamer = simulator.devices[0].last_stream
        assert streamer is not None
        thread_cpu = streamer.cpu_time / elapsed
    print(
        f"  virtual, in-process: simulator streaming thread {100 * thread_cpu:5.1f} % of one "
        f"core at {result.rate:,.0f} frames/s; whole process incl. icotronic client "
        f"{100 * total:.1f} %; loss {result.lost}"
    )


# -- 2. Highest sustained rate -------------------------------------------------


def report_step(multiplier: float, result: StreamResult) -> None:
    status = "ok" if result.sustained else "FAIL"
    detail = result.error or (
        f"loss {result.lost}, received {result.span:.2f} s of stream in {result.wall:.2f} s"
    )
    print(f"    x{multiplier:<4g} {result.rate:>9,.0f} frames/s  {status:4}  {detail}")


async def ramp_virtual() -> float:
    best = 0.0
    failures = 0
    with Simulator(SimulatorConfig.default(scan_delay=0.05, connect_delay=0.1)) as simulator:
        configure_icotronic("virtual", simulator.channel)
        async with Connection() as stu, stu.connect_sensor_node(MAC) as node:
            # The ramp measures the simulator, not a 1 Mbit/s bus (6250 frames/s).
            simulator.faults.bus_bitrate = None
            for multiplier in MULTIPLIERS:
                simulator.rate_multiplier = multiplier
                result = await stream(node, STEP_SECONDS)
                report_step(multiplier, result)
                if result.sustained:
                    best = max(best, result.rate)
                else:
                    failures += 1
                    if failures >= 2 or result.error:
                        break
        quiet_logs()
    return best


async def ramp_tcp() -> float:
    best = 0.0
    failures = 0
    for multiplier in MULTIPLIERS:
        with simulator_process(multiplier) as (host, port, _pid):
            configure_icotronic("socketcand", "can0", host=host, port=port)
            async with Connection() as stu, stu.connect_sensor_node(MAC) as node:
                result = await stream(node, STEP_SECONDS)
            quiet_logs()
        report_step(multiplier, result)
        if result.sustained:
            best = max(best, result.rate)
        else:
            failures += 1
            if failures >= 2 or result.error:
                break
    return best


async def main() -> None:
    started = time.monotonic()
    logging.basicConfig(level=logging.ERROR)
    print(f"ICOtronic simulator benchmark ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    print("1. CPU cost at the default rate (1 channel, ADC 9524 Hz → 3175 frames/s):")
    await cpu_tcp()
    await cpu_virtual()
    print("2. Highest rate with 0 loss, icotronic client keeping up (1 channel):")
    print("  virtual link (simulator and client in one process):")
    best_virtual = await ramp_virtual()
    print("  TCP socketcand link (simulator in its own process):")
    best_tcp = await ramp_tcp()
    print(f"  → virtual: {best_virtual:,.0f} frames/s ({best_virtual / 3174.6:.1f}x default)")
    print(f"  → TCP:     {best_tcp:,.0f} frames/s ({best_tcp / 3174.6:.1f}x default)")
    print(f"Benchmark took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
