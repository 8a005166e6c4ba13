"""The measurement lease of ``ICOSystem``, apart from the link state: what it
allows and refuses, and that it ends with the device it was taken on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from icoapi.core.events import Event, EventBus, SystemChanged
from icoapi.system.errors import IncorrectStateError, MeasurementRunningError
from icoapi.system.link import CanLinkConfig
from icoapi.system.schemas import DEFAULT_ADC, ADCSettings, LinkState
from icoapi.system.service import ICOSystem
from tests.support import fast_simulator_config


@pytest.fixture
async def system() -> AsyncIterator[ICOSystem]:
    config = fast_simulator_config()
    system = ICOSystem(
        CanLinkConfig(
            interface="icosim",
            channel=f"lease-{uuid4().hex}",
            bitrate=1_000_000,
            options={"config": config},
        ),
        EventBus(),
    )
    assert await system.open()
    await system.connect(config.devices[0].mac)
    try:
        yield system
    finally:
        await system.close()


async def test_the_lease_leaves_the_link_state_alone(system: ICOSystem) -> None:
    events: list[Event] = []
    system.events.subscribe(events.append)
    assert not system.measuring
    async with system.measurement_lease():
        assert system.measuring
        assert system.state is LinkState.SENSOR_CONNECTED
        snapshot = system.snapshot()
        assert (snapshot.link_state, snapshot.measuring) == (LinkState.SENSOR_CONNECTED, True)
        assert any(isinstance(event, SystemChanged) for event in events)
        events.clear()
    assert not system.measuring
    assert system.state is LinkState.SENSOR_CONNECTED
    assert system.snapshot().measuring is False
    assert any(isinstance(event, SystemChanged) for event in events)


async def test_the_lease_refuses_what_would_disturb_the_stream(system: ICOSystem) -> None:
    device = system.snapshot().device
    assert device is not None
    async with system.measurement_lease(device.mac_address):
        with pytest.raises(MeasurementRunningError):
            async with system.measurement_lease():
                pass
        with pytest.raises(MeasurementRunningError):
            await system.disconnect()
        with pytest.raises(MeasurementRunningError):
            await system.write_adc(ADCSettings(**DEFAULT_ADC))
        with pytest.raises(MeasurementRunningError):
            await system.rename(device.mac_address, "Other")
        with pytest.raises(MeasurementRunningError):
            await system.reset_can()
        # Reads beside the stream, and the holder's own operations, go on.
        assert (await system.get_stu()).name == "STU 1"
        assert await system.is_device_connected()
        applied, name = await system.configure_measurement(ADCSettings(**DEFAULT_ADC), None)
        assert applied == ADCSettings(**DEFAULT_ADC)
        assert name == device.name
    # After the lease the device is free again.
    await system.disconnect()
    assert system.state is LinkState.STU_CONNECTED


async def test_only_the_lease_holder_configures_a_measurement(system: ICOSystem) -> None:
    with pytest.raises(IncorrectStateError) as refused:
        await system.configure_measurement(ADCSettings(**DEFAULT_ADC), None)
    assert not isinstance(refused.value, MeasurementRunningError)


async def test_the_lease_ends_with_the_device(system: ICOSystem) -> None:
    async with system.measurement_lease():
        await system.close()  # e.g. the service shuts down during a measurement
        assert not system.measuring
        assert system.state is LinkState.DISCONNECTED
    assert not system.measuring
