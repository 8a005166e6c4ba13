"""Injected faults show up in the icotronic library as they would with hardware."""

from __future__ import annotations

import time

import pytest
from icotronic.can import (
    ErrorResponseError,
    NoResponseError,
    StreamingConfiguration,
    StreamingTimeoutError,
)
from icotronic.can.node.sth import STH
from icotronic.can.node.stu import STU
from netaddr import EUI

from icoapi.simulator import Simulator
from icoapi.simulator.protocol import Block, Bluetooth, Configuration, System

from .helpers import record_stream


async def test_random_drops_match_dataloss(sth: STH, simulator: Simulator) -> None:
    simulator.faults.drop_rate = 0.10
    # Three times the real rate: the same ~9500 frames in a third of the time.
    simulator.rate_multiplier = 3.0
    simulator.faults.bus_bitrate = None  # beyond what a 1 Mbit/s bus carries
    recording = await record_stream(sth, StreamingConfiguration(), seconds=1.0)
    assert recording.frames + sum(recording.lost) >= 9000
    assert recording.dataloss == pytest.approx(0.10, abs=0.01)
    # The library saw the drops the simulator made (it counts a few frames
    # more or less at the edges of the stream).
    stream = simulator.devices[0].last_stream
    assert stream is not None
    injected = stream.frames_dropped / stream.frames_generated
    assert recording.dataloss == pytest.approx(injected, abs=0.003)


async def test_burst_drop_is_counted(sth: STH, simulator: Simulator) -> None:
    lost_in_frame: list[int] = []
    async with sth.open_data_stream(StreamingConfiguration()) as stream:
        received = 0
        async for _data, lost in stream:
            received += 1
            lost_in_frame.append(lost)
            if received == 100:
                simulator.faults.drop_next(100)
            if received == 400:
                break
    assert sum(lost_in_frame) == 100
    assert 100 in lost_in_frame  # one gap of exactly 100 frames
    assert simulator.faults.pending_drops == 0


async def test_stall_raises_streaming_timeout(sth: STH, simulator: Simulator) -> None:
    received = 0
    started = time.monotonic()
    with pytest.raises(StreamingTimeoutError):
        async with sth.open_data_stream(StreamingConfiguration(), timeout=1) as stream:
            async for _data, _lost in stream:
                received += 1
                if received == 50:
                    simulator.faults.stall = True
    assert received >= 50
    assert time.monotonic() - started < 5
    # The device still answers: the stop request went through.
    assert simulator.devices[0].streamer is None
    simulator.faults.stall = False
    assert (await sth.get_adc_configuration()).prescaler == 2


@pytest.mark.parametrize("request_attempts", [2], indirect=True)
async def test_link_loss(stu: STU, sth: STH, simulator: Simulator) -> None:
    simulator.faults.link_loss_after = 0.3
    received = 0
    # Library pitfall: DataStreamContextManager.__aexit__ always tries the
    # full number of stop attempts (10 in the library, capped to 2 here), so
    # the StreamingTimeoutError of the lost link surfaces as NoResponseError
    # after all of them, with the real cause chained.
    with pytest.raises(NoResponseError) as raised:
        async with sth.open_data_stream(StreamingConfiguration(), timeout=1) as stream:
            async for _data, _lost in stream:
                received += 1
    assert isinstance(raised.value.__context__, StreamingTimeoutError)
    assert received > 0
    assert simulator.connected_device is None
    assert not await stu.is_connected()


@pytest.mark.parametrize("request_attempts", [3], indirect=True)
async def test_ignored_request_gives_no_response(stu: STU, simulator: Simulator) -> None:
    simulator.faults.ignore.add((Block.SYSTEM, System.STATE))
    before = len(simulator.requests)
    with pytest.raises(NoResponseError):
        await stu.get_state()
    # The library sent the request once per attempt before it gave up.
    sent = [
        r
        for r in list(simulator.requests)[before:]
        if (r.block, r.command) == (Block.SYSTEM, System.STATE)
    ]
    assert len(sent) == 3
    assert not any(r.answered for r in sent)
    simulator.faults.ignore.clear()
    await stu.get_state()


async def test_error_response(sth: STH, stu: STU, simulator: Simulator) -> None:
    simulator.faults.error.add((Block.CONFIGURATION, Configuration.ADC))
    with pytest.raises(ErrorResponseError):
        await sth.get_adc_configuration()
    # A Bluetooth subcommand can be targeted alone.
    simulator.faults.error = {(Block.SYSTEM, System.BLUETOOTH, Bluetooth.RSSI)}
    with pytest.raises(ErrorResponseError):
        await sth.get_rssi()
    assert await sth.get_name() == "Tool-1"


async def test_response_delay_forces_retry(stu: STU, simulator: Simulator) -> None:
    simulator.faults.response_delay = 0.8  # longer than the first 0.6 s try
    started = time.monotonic()
    state = await stu.get_state()
    assert repr(state).endswith("Operating")
    assert time.monotonic() - started >= 0.8
    requests = [r for r in simulator.requests if r.block == Block.SYSTEM and r.command == 2]
    assert len(requests) >= 2  # the library sent the request again


async def test_low_battery(sth: STH, simulator: Simulator) -> None:
    assert await sth.get_supply_voltage() == pytest.approx(3.9, abs=0.01)
    simulator.faults.low_battery = True
    assert await sth.get_supply_voltage() == pytest.approx(3.1, abs=0.01)


async def test_hidden_device_leaves_scan(stu: STU, simulator: Simulator) -> None:
    hidden = simulator.devices[1].config.mac
    simulator.faults.hidden_devices.add(hidden)
    nodes = await stu.collect_sensor_nodes()
    assert EUI(hidden) not in {node.mac_address for node in nodes}
    assert len(nodes) == len(simulator.devices) - 1
    simulator.faults.hidden_devices.clear()
    assert len(await stu.get_sensor_nodes()) == len(simulator.devices)
