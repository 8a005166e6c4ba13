"""The simulator as the python-can interface ``icosim``: found by name through its
entry point, one simulator per channel, and a host adapter that can go bus-off."""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import uuid4

import can
import pytest
from icotronic.can import Connection

from icoapi.simulator import configure_icotronic
from icoapi.simulator.plugin import SimulatorBus, simulator_on
from icoapi.simulator.protocol import SPU1, STU1, Block, System, encode_identifier
from icoapi.system.link import CanLinkConfig
from tests.support import make_settings

from .conftest import _drop_icotronic_log_handlers

GET_STATE = encode_identifier(Block.SYSTEM, System.STATE, sender=SPU1, receiver=STU1, request=True)
STATE_ANSWER = encode_identifier(Block.SYSTEM, System.STATE, sender=STU1, receiver=SPU1)
CAN_ERR_BUSOFF = 0x040
CAN_ERR_RESTARTED = 0x100


def channel() -> str:
    return f"icosim-plugin-{uuid4().hex}"


@pytest.fixture
def adapter() -> Iterator[can.BusABC]:
    bus = can.Bus(interface="icosim", channel=channel())
    yield bus
    bus.shutdown()


def ask_state(bus: can.BusABC, timeout: float = 2.0) -> can.Message | None:
    """Send Get State to the STU; the answer, or ``None``."""
    bus.send(can.Message(arbitration_id=GET_STATE, is_extended_id=True, data=[0]))
    return receive(bus, lambda message: message.arbitration_id == STATE_ANSWER, timeout)


def receive(
    bus: can.BusABC, wanted: Callable[[can.Message], bool], timeout: float
) -> can.Message | None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        message = bus.recv(left)
        if message is not None and wanted(message):
            return message
    return None


def test_can_bus_opens_the_simulator_by_name(adapter: can.BusABC) -> None:
    assert isinstance(adapter, SimulatorBus)
    answer = ask_state(adapter)
    assert answer is not None and bytes(answer.data) == b"\x25"


def test_channels_isolate_simulators() -> None:
    first, second = channel(), channel()
    bus_a = can.Bus(interface="icosim", channel=first)
    bus_b = can.Bus(interface="icosim", channel=second)
    try:
        assert simulator_on(first) is not simulator_on(second)
        assert ask_state(bus_a) is not None
        # B heard neither A's request nor A's answer.
        assert bus_b.recv(0.1) is None
        assert len(simulator_on(second).requests) == 0
    finally:
        bus_a.shutdown()
        bus_b.shutdown()


def test_adapters_on_one_channel_share_it_until_the_last_closes() -> None:
    name = channel()
    first = can.Bus(interface="icosim", channel=name)
    second = can.Bus(interface="icosim", channel=name)
    simulator = simulator_on(name)
    first.shutdown()
    assert simulator_on(name) is simulator
    assert ask_state(second) is not None
    second.shutdown()
    with pytest.raises(KeyError):
        simulator_on(name)


def test_bus_off_and_restart(adapter: can.BusABC) -> None:
    assert isinstance(adapter, SimulatorBus)
    adapter.enter_bus_off(recover_after=0.3)
    assert adapter.state is can.BusState.ERROR
    report = receive(adapter, lambda message: message.is_error_frame, 1.0)
    assert report is not None and report.arbitration_id & CAN_ERR_BUSOFF
    with pytest.raises(can.CanOperationError):
        adapter.send(can.Message(arbitration_id=GET_STATE, is_extended_id=True, data=[0]))
    restarted = receive(adapter, lambda message: message.is_error_frame, 2.0)
    assert restarted is not None and restarted.arbitration_id & CAN_ERR_RESTARTED
    assert adapter.state is can.BusState.ACTIVE
    assert ask_state(adapter) is not None


async def test_icotronic_drives_the_plugin() -> None:
    name = channel()
    configure_icotronic("icosim", name)
    try:
        connection = Connection()
        stu = await connection.__aenter__()
        try:
            assert int((await stu.get_state()).value) == 0x25
            assert simulator_on(name).requests
        finally:
            await connection.__aexit__(None, None, None)
    finally:
        _drop_icotronic_log_handlers()


def test_simulator_is_an_alias_of_icosim(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, CAN_INTERFACE="simulator")
    link = CanLinkConfig.from_settings(settings)
    assert link.interface == "icosim"
    assert link.bus_kwargs()["interface"] == "icosim"


def test_system_does_not_import_the_simulator() -> None:
    system = Path(__file__).resolve().parents[2] / "icoapi" / "system"
    for module in system.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(name.startswith("icoapi.simulator") for name in names), module
