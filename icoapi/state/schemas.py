"""The system state as clients see it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from icoapi.core.disk import DiskCapacity, DiskSpace
from icoapi.dataspace.schemas import CloudState
from icoapi.measurement.schemas import MeasurementStatusSummary
from icoapi.system.schemas import ConnectedDevice, LinkState, SystemSnapshot


class ReportedLinkState(StrEnum):
    """The link state as ``/state`` reports it: the system's :class:`LinkState`,
    except ``measuring`` while a measurement holds the connected device (MyTooliT
    ICOapi 0.2.1 reported it so, and the ICOdaq web client relies on it)."""

    DISCONNECTED = LinkState.DISCONNECTED.value
    STU_CONNECTED = LinkState.STU_CONNECTED.value
    SENSOR_CONNECTED = LinkState.SENSOR_CONNECTED.value
    MEASURING = "measuring"

    @classmethod
    def of(cls, system: SystemSnapshot) -> ReportedLinkState:
        if system.measuring and system.link_state is LinkState.SENSOR_CONNECTED:
            return cls.MEASURING
        return cls(system.link_state.value)


class SystemStateModel(BaseModel):
    """The four fields of MyTooliT ICOapi 0.2.1 first (the ICOdaq web client reads
    them), then what they
    cannot tell: the real link state, the connected device, whether a measurement
    runs."""

    can_ready: bool = Field(description="The CAN link is open.")
    disk_capacity: DiskCapacity
    measurement_status: MeasurementStatusSummary
    cloud: CloudState
    link_state: ReportedLinkState = Field(
        description="disconnected, stu_connected, sensor_connected or measuring."
    )
    link_error: str | None = Field(description="Why the CAN link is not available.")
    can_interface: str
    device: ConnectedDevice | None = Field(description="The connected sensor device.")
    disk: DiskSpace | None = Field(
        default=None,
        description="Free space for measurements, the reserve (ICOAPI_DISK_RESERVE_BYTES) "
        "and the seconds that can still be recorded.",
    )
    measuring: bool
    access_control: bool = Field(
        description="Requests need a token (tokens file or ICOAPI_API_KEY), except from "
        "trusted networks."
    )
    version: str


class SocketMessage(BaseModel):
    message: str
    data: Any = None


class Health(BaseModel):
    status: str = "ok"
    version: str
