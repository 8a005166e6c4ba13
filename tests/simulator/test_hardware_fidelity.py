"""The simulator answers like hardware where the library would tolerate less:
frames checked on the bus itself, with a second bus on the simulator's channel."""

from __future__ import annotations

from collections.abc import Iterator

import can
import pytest
from icotronic.can import StreamingConfiguration
from icotronic.can.node.sth import STH
from icotronic.can.node.stu import STU
from netaddr import EUI

from icoapi.simulator import Simulator, SimulatorConfig
from icoapi.simulator.protocol import (
    SPU1,
    STH1,
    STU1,
    Block,
    Bluetooth,
    Identifier,
    Streaming,
    System,
)

from .helpers import CONNECT_DELAY, record_stream

# Long enough that nothing a test does takes that long before it looks.
SLOW_SCAN = SimulatorConfig.default(seed=1, scan_delay=30.0, connect_delay=CONNECT_DELAY)


@pytest.fixture
def sniffer(simulator: Simulator) -> Iterator[can.BusABC]:
    """A bus on the simulator's channel: it receives the library's requests and
    the simulator's answers, in order."""
    bus = can.Bus(interface="virtual", channel=simulator.channel, ignore_config=True)
    try:
        yield bus
    finally:
        bus.shutdown()


def drain(bus: can.BusABC) -> list[tuple[Identifier, bytes]]:
    frames = []
    while (message := bus.recv(timeout=0)) is not None:
        frames.append((Identifier.decode(message.arbitration_id), bytes(message.data)))
    return frames


def connect_mac_request(mac: str) -> list[int]:
    return list(reversed(EUI(mac).packed))


async def request_connect_by_mac(stu: STU, mac: str) -> bytes:
    """One Bluetooth connect-by-MAC request; the STU's answer bytes."""
    response = await stu.spu.request_bluetooth(
        node="STU 1",
        subcommand=Bluetooth.CONNECT_MAC,
        data=connect_mac_request(mac),
        description="connect by MAC",
    )
    return bytes(response.data)


async def test_first_data_frame_answers_stream_start(
    sth: STH, simulator: Simulator, sniffer: can.BusABC
) -> None:
    def is_data_answer(identifier: Identifier) -> bool:
        return (
            not identifier.request
            and identifier.sender == STH1
            and identifier.receiver == SPU1
            and (identifier.block, identifier.command) == (Block.STREAMING, Streaming.DATA)
        )

    drain(sniffer)
    recording = await record_stream(sth, StreamingConfiguration(), frames=100)
    frames = drain(sniffer)
    # The library may take a data frame for the stop's answer (both use the
    # streaming identifier), so the real 1-byte answer can still be on its way;
    # the stop request itself has the same byte, so look for the answer.
    while not frames or not (is_data_answer(frames[-1][0]) and frames[-1][1] == b"\x80"):
        message = sniffer.recv(timeout=2)
        if message is None:
            break
        frames.append((Identifier.decode(message.arbitration_id), bytes(message.data)))

    start = next(
        index
        for index, (identifier, data) in enumerate(frames)
        if identifier.request and identifier.block == Block.STREAMING and data[:1] == b"\xa2"
    )
    answers = [data for identifier, data in frames[start + 1 :] if is_data_answer(identifier)]
    # Hardware's answer to the start is the first data frame: 8 bytes, counter 0.
    assert len(answers[0]) == 8
    assert answers[0][:2] == b"\xa2\x00"
    assert recording.counters[0] == 0
    # The only short frame is the stop's 1-byte answer, at the very end.
    short = [data for data in answers if len(data) <= 1]
    assert short == [b"\x80"]
    assert answers[-1] == b"\x80"


async def test_supply_voltage_answer_is_four_bytes(
    sth: STH, simulator: Simulator, sniffer: can.BusABC
) -> None:
    drain(sniffer)
    assert await sth.get_supply_voltage() == pytest.approx(3.9, abs=0.01)
    answers = [
        data
        for identifier, data in drain(sniffer)
        if not identifier.request
        and identifier.sender == STH1
        and (identifier.block, identifier.command) == (Block.STREAMING, Streaming.VOLTAGE)
    ]
    assert len(answers) == 1
    assert len(answers[0]) == 4


async def test_connect_by_mac_echoes_the_mac_once(stu: STU, simulator: Simulator) -> None:
    device = simulator.devices[2]
    await stu.activate_bluetooth()
    nodes = await stu.collect_sensor_nodes()  # the scan has found the device
    assert EUI(device.config.mac) in {node.mac_address for node in nodes}
    echo = bytes([Bluetooth.CONNECT_MAC, 0]) + bytes(reversed(EUI(device.config.mac).packed))
    zeros = bytes([Bluetooth.CONNECT_MAC, 0]) + bytes(6)

    answers = [await request_connect_by_mac(stu, device.config.mac)]
    # Repeat like the library's own example until the link is up, then twice more.
    while not await stu.is_connected():
        answers.append(await request_connect_by_mac(stu, device.config.mac))
    answers.append(await request_connect_by_mac(stu, device.config.mac))
    answers.append(await request_connect_by_mac(stu, device.config.mac))

    assert simulator.connected_device is device
    assert answers.count(echo) == 1
    assert all(answer in (echo, zeros) for answer in answers)
    # Once, after the connection was established: not the answer to the
    # request that started it (the link takes connect_delay), and not again.
    assert answers[0] == zeros
    assert answers[-1] == zeros
    await stu.deactivate_bluetooth()
    assert simulator.connected_device is None


async def test_connect_by_mac_refused_without_bluetooth(stu: STU, simulator: Simulator) -> None:
    device = simulator.devices[0]
    zeros = bytes([Bluetooth.CONNECT_MAC, 0]) + bytes(6)
    assert await request_connect_by_mac(stu, device.config.mac) == zeros
    # Nothing was started: no connection in progress, and none established.
    assert simulator.stu.connecting_device is None
    assert not simulator.stu.bluetooth_active
    assert not await stu.is_connected()


@pytest.mark.parametrize("sim_config", [SLOW_SCAN], indirect=True)
async def test_connect_by_mac_refused_before_the_scan_found_the_device(
    stu: STU, simulator: Simulator, sniffer: can.BusABC
) -> None:
    device = simulator.devices[0]
    zeros = bytes([Bluetooth.CONNECT_MAC, 0]) + bytes(6)
    await stu.activate_bluetooth()
    assert await stu.get_available_nodes() == 0  # the scan has not finished
    assert await request_connect_by_mac(stu, device.config.mac) == zeros
    assert simulator.stu.connecting_device is None
    assert not await stu.is_connected()
    # The requests really went to the STU (and were answered, with zeros).
    connects = [
        data
        for identifier, data in drain(sniffer)
        if identifier.request
        and identifier.receiver == STU1
        and (identifier.block, identifier.command) == (Block.SYSTEM, System.BLUETOOTH)
        and data[:1] == bytes([Bluetooth.CONNECT_MAC])
    ]
    assert len(connects) == 1
