"""Fixtures: a running simulator on a unique virtual channel and icotronic on top.

Every test gets its own ``virtual`` channel, so simulators of different tests
never hear each other, and icotronic is pointed at it with
``configure_icotronic`` before ``Connection()`` is constructed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import can
import pytest
from icotronic.can import Connection
from icotronic.can.node.sth import STH
from icotronic.can.node.stu import STU
from netaddr import EUI

from icoapi.simulator import Simulator, SimulatorConfig, configure_icotronic
from icoapi.simulator.protocol import SPU1, STU1, Block, encode_identifier
from icoapi.system.timeouts import LIBRARY_REQUEST_ATTEMPTS, AttemptLimitedSPU

from .helpers import CONNECT_DELAY, SCAN_DELAY

# An acknowledgement nobody waits for: harmless to every icotronic listener.
_WAKE_ID = encode_identifier(Block.STATISTICAL_DATA, 0xFF, sender=STU1, receiver=SPU1)


@pytest.fixture
def sim_config(request: pytest.FixtureRequest) -> SimulatorConfig:
    """Three default devices, short delays and a fixed seed.

    Tests pass their own with
    ``@pytest.mark.parametrize("sim_config", [config], indirect=True)``.
    """
    configured: SimulatorConfig | None = getattr(request, "param", None)
    if configured is not None:
        return configured
    return SimulatorConfig.default(
        seed=20251124, scan_delay=SCAN_DELAY, connect_delay=CONNECT_DELAY
    )


@pytest.fixture
def simulator(sim_config: SimulatorConfig) -> Iterator[Simulator]:
    """A running in-process simulator; icotronic is configured to use it."""
    simulator = Simulator(sim_config, interface="virtual", channel=f"icosim-test-{uuid4().hex}")
    with simulator:
        configure_icotronic("virtual", simulator.channel)
        yield simulator


def _drop_icotronic_log_handlers() -> None:
    # Every icotronic Connection adds a FileHandler to this logger and never
    # removes it; close them so a long test run does not leak files.
    logger = logging.getLogger("icotronic.can.messages")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


async def close_connection(connection: Connection, simulator: Simulator) -> None:
    """Leave a ``Connection`` without waiting for python-can's 1 s receive timeout.

    On the virtual bus the Notifier's reader thread sits in ``bus.recv(1.0)``
    and ``Notifier.stop`` joins it; a frame on the bus wakes it at once.
    """
    exit_task = asyncio.create_task(connection.__aexit__(None, None, None))
    wake = can.Message(arbitration_id=_WAKE_ID, is_extended_id=True, data=b"")
    while not exit_task.done():
        simulator.send_batch((wake,))
        await asyncio.wait({exit_task}, timeout=0.01)
    await exit_task


@pytest.fixture
def request_attempts(request: pytest.FixtureRequest) -> int:
    """Attempts per CAN request: the library's own number unless a test asks
    for fewer with ``@pytest.mark.parametrize("request_attempts", [n], indirect=True)``
    (a test of an unanswered request then waits n attempts, not 10)."""
    attempts: int = getattr(request, "param", LIBRARY_REQUEST_ATTEMPTS)
    return attempts


@pytest.fixture
async def stu(simulator: Simulator, request_attempts: int) -> AsyncIterator[STU]:
    """icotronic's STU object, connected to the simulator over the CAN bus."""
    connection = Connection()
    stu = await connection.__aenter__()
    if request_attempts != LIBRARY_REQUEST_ATTEMPTS:
        # The same bus and notifier, with requests capped at fewer attempts.
        stu = STU(AttemptLimitedSPU(connection.bus, connection.notifier, request_attempts))
    try:
        yield stu
    finally:
        await close_connection(connection, simulator)
        _drop_icotronic_log_handlers()


@pytest.fixture
async def sth(stu: STU, simulator: Simulator) -> AsyncIterator[STH]:
    """The first simulated device, connected by MAC address as an ``STH``."""
    mac = simulator.devices[0].config.mac
    async with stu.connect_sensor_node(EUI(mac), STH) as node:
        assert isinstance(node, STH)
        yield node
