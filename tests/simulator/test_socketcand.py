"""The simulator as a separate process, reached over TCP with python-can's socketcand."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from icotronic.can import Connection, StreamingConfiguration
from netaddr import EUI

from icoapi.simulator import SimulatorConfig, configure_icotronic

from .helpers import CONNECT_DELAY, SCAN_DELAY, record_stream

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"ready: socketcand on (?P<host>[\d.]+):(?P<port>\d+)")


@pytest.fixture
def simulator_process() -> Iterator[tuple[str, int]]:
    """``python -m icoapi.simulator --port 0`` in a subprocess; yields host, port."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    command = [
        sys.executable,
        "-m",
        "icoapi.simulator",
        "--port",
        "0",
        "--seed",
        "7",
        "--scan-delay",
        str(SCAN_DELAY),
        "--connect-delay",
        str(CONNECT_DELAY),
        "--log-level",
        "WARNING",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=30)  # the process listens once it prints this
            match = READY.search(line)
            if match:
                break
        yield match["host"], int(match["port"])
    finally:
        process.terminate()
        process.wait(10)
        # Remove host/port from python-can's global config for later tests.
        configure_icotronic("virtual", "icosim-unused")


async def test_stream_over_socketcand(simulator_process: tuple[str, int]) -> None:
    host, port = simulator_process
    configure_icotronic("socketcand", "can0", host=host, port=port)
    device = SimulatorConfig.default().devices[0]
    async with Connection() as stu:
        nodes = await stu.collect_sensor_nodes()
        assert len(nodes) == 3
        async with stu.connect_sensor_node(EUI(device.mac)) as node:
            assert await node.get_name() == device.name
            adc = await node.get_adc_configuration()
            recording = await record_stream(node, StreamingConfiguration(), seconds=2.0)
    assert recording.duration() >= 2.0
    assert recording.dataloss == 0
    assert sum(recording.lost) == 0
    assert recording.frame_rate() == pytest.approx(adc.sample_rate() / 3, rel=0.02)
