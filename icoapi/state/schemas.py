"""The system state as clients see it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from icoapi.core.disk import DiskCapacity
from icoapi.measurement.schemas import MeasurementStatus
from icoapi.system.schemas import ConnectedDevice


class UploadProgress(BaseModel):
    name: str
    bytes_sent: int
    size: int


class CloudState(BaseModel):
    """The dataspace as the web client sees it (its first three fields), then
    why it is unhealthy and what the upload queue does."""

    enabled: bool = False
    healthy: bool = False
    manage_url: str | None = None
    reason: str | None = Field(default=None, description="Why the dataspace is not healthy.")
    connector: str | None = Field(default=None, description="trident or s3.")
    auto_upload: bool = False
    queued: int = Field(default=0, description="Upload jobs waiting.")
    uploading: UploadProgress | None = None


class SystemStateModel(BaseModel):
    """Upstream's four fields first (the web client reads them), then what they
    cannot tell: the real link state, the connected device, whether a measurement
    runs."""

    can_ready: bool = Field(description="The CAN link is open.")
    disk_capacity: DiskCapacity
    measurement_status: MeasurementStatus
    cloud: CloudState
    link_state: str = Field(
        description="disconnected, stu_connected, sensor_connected or measuring."
    )
    link_error: str | None = Field(description="Why the CAN link is not available.")
    can_interface: str
    device: ConnectedDevice | None = Field(description="The connected sensor device.")
    measuring: bool
    version: str


class SocketMessage(BaseModel):
    message: str
    data: Any = None


class Health(BaseModel):
    status: str = "ok"
    version: str
