"""HTTP layer of the hardware domain: STU and sensor-device endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Body

from icoapi.core.errors import error_responses
from icoapi.system.deps import SystemDep
from icoapi.system.errors import (
    CanLinkUnavailableError,
    CanNoResponseError,
    DeviceUnreachableError,
    HardwareTimeoutError,
    IncorrectStateError,
)
from icoapi.system.schemas import (
    ADCSettings,
    ADCValues,
    ConnectRequest,
    RenameRequest,
    RenameResponse,
    SensorDeviceInfo,
    STUInfo,
    SupplyVoltage,
)

LINK_ERRORS = (CanNoResponseError, CanLinkUnavailableError, HardwareTimeoutError)

stu_router = APIRouter(prefix="/stu", tags=["Stationary Transceiver Unit (STU)"])
sth_router = APIRouter(prefix="/sth", tags=["Sensory Tool Holder (STH)"])
general_router = APIRouter(tags=["General"])


@stu_router.get("", response_model=list[STUInfo], responses=error_responses(*LINK_ERRORS))
async def list_stu(system: SystemDep) -> list[STUInfo]:
    """The STU on the CAN bus (one per service)."""
    return [await system.get_stu()]


@stu_router.put(
    "/reset", response_model=None, responses=error_responses(IncorrectStateError, *LINK_ERRORS)
)
async def reset_stu(system: SystemDep) -> None:
    """Reset the STU and wait until it is operational again. A connected sensor
    device is disconnected first; refused during a measurement."""
    await system.reset_stu()


@stu_router.get("/connected", response_model=bool, responses=error_responses(*LINK_ERRORS[:1]))
async def stu_connected(system: SystemDep) -> bool:
    """Whether the STU is connected to a sensor device (``false`` without CAN)."""
    return await system.is_device_connected()


@sth_router.get(
    "",
    response_model=list[SensorDeviceInfo],
    responses=error_responses(IncorrectStateError, *LINK_ERRORS),
)
async def list_sensor_devices(system: SystemDep) -> list[SensorDeviceInfo]:
    """Scan for sensor devices until the list is stable (at most a few seconds)."""
    return await system.scan()


@sth_router.put(
    "/connect",
    response_model=None,
    responses=error_responses(IncorrectStateError, DeviceUnreachableError, *LINK_ERRORS),
)
async def connect_sensor_device(system: SystemDep, body: ConnectRequest) -> None:
    """Connect the STU to the sensor device with this MAC address."""
    await system.connect(body.mac_address)


@sth_router.put(
    "/disconnect", response_model=None, responses=error_responses(IncorrectStateError, *LINK_ERRORS)
)
async def disconnect_sensor_device(system: SystemDep) -> None:
    """Disconnect the connected sensor device."""
    await system.disconnect()


@sth_router.put(
    "/rename",
    response_model=RenameResponse,
    responses=error_responses(IncorrectStateError, DeviceUnreachableError, *LINK_ERRORS),
)
async def rename_sensor_device(system: SystemDep, body: RenameRequest) -> RenameResponse:
    """Give a sensor device a new name (1–8 printable ASCII characters)."""
    return await system.rename(body.mac_address, body.new_name)


@sth_router.get(
    "/read-adc",
    response_model=ADCSettings,
    responses=error_responses(DeviceUnreachableError, *LINK_ERRORS),
)
async def read_adc(system: SystemDep) -> ADCSettings:
    """ADC settings of the connected sensor device."""
    return await system.read_adc()


@sth_router.put(
    "/write-adc",
    response_model=None,
    responses=error_responses(DeviceUnreachableError, IncorrectStateError, *LINK_ERRORS),
)
async def write_adc(system: SystemDep, body: ADCValues = Body(...)) -> None:
    """Change the ADC settings of the connected sensor device; ``null`` fields take
    the defaults."""
    await system.write_adc(body.with_defaults())


@sth_router.get(
    "/supply-voltage",
    response_model=SupplyVoltage,
    responses=error_responses(DeviceUnreachableError, *LINK_ERRORS),
)
async def supply_voltage(system: SystemDep) -> SupplyVoltage:
    """Supply (battery) voltage of the connected sensor device."""
    voltage, timestamp = await system.supply_voltage()
    return SupplyVoltage(supply_voltage=voltage, timestamp_utc_iso=timestamp)


@general_router.put(
    "/reset-can",
    response_model=None,
    responses=error_responses(IncorrectStateError, CanLinkUnavailableError),
)
async def reset_can(system: SystemDep) -> None:
    """Close and reopen the CAN link (e.g. after plugging in the adapter)."""
    await system.reset_can()
