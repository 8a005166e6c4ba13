"""Request and response bodies of the measurement-file endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from icoapi.core.disk import DiskCapacity
from icoapi.hdf5.layout import ACCELERATION_PATH

# The values the web client renders; finer states are in the other fields.
CloudStatus = Literal["not_uploaded", "outdated", "updating", "up_to_date", "error", "created"]


class FileCloudDetails(BaseModel):
    status: CloudStatus = "not_uploaded"
    id: int | None = None
    upload_timestamp: str | None = None
    queue_state: str | None = Field(
        default=None, description="The file's upload job: queued, uploading, failed, done."
    )
    progress: float | None = Field(default=None, description="Upload progress (0..1).")
    detail: str | None = Field(
        default=None, description="Why: a failed or waiting upload, several remote objects."
    )


class MeasurementFileDetails(BaseModel):
    name: str = Field(examples=["milling__2025-03-01_10-15-00.hdf5"])
    created: str = Field(
        description="Local ISO time the file was created (its birth time where the "
        "platform reports one, else its modification time)."
    )
    modified: str = Field(description="Local ISO time of the last modification.")
    size: int = Field(description="Size in bytes.")
    invalid: str | None = Field(
        default=None,
        description="Why the file is refused by the hostile-file check (it is never "
        "opened, and the routes that read it answer 422); null for a readable file.",
    )
    cloud: FileCloudDetails = Field(default_factory=FileCloudDetails)


class FileListResponse(BaseModel):
    capacity: DiskCapacity
    files: list[MeasurementFileDetails] = Field(description="Newest first.")
    directory: str = Field(description="Absolute path of the measurement directory.")


class DeleteResponse(BaseModel):
    detail: str = Field(examples=["File 'milling__2025-03-01_10-15-00.hdf5' deleted successfully"])


class HDF5NodeInfo(BaseModel):
    name: str = Field(examples=["acceleration"])
    type: str = Field(examples=["Table"])
    path: str = Field(examples=[ACCELERATION_PATH])
    attributes: dict[str, Any] = Field(
        description="All HDF5 attributes of the node. Text that is JSON is parsed "
        '("true" → true, pre_metadata/post_metadata → objects); pictures are merged '
        "back into the metadata parameters."
    )


class StoredSensor(BaseModel):
    """A row of the file's ``/sensors`` table."""

    channel: str | None = Field(
        default=None, description="first, second or third (files written by this service)."
    )
    name: str
    sensor_type: str | None = None
    sensor_id: str
    unit: str
    dimension: str = ""
    phys_min: float
    phys_max: float
    volt_min: float
    volt_max: float
    scaling_factor: float
    offset: float


class EmbeddedFileInfo(BaseModel):
    dataset_name: str = Field(examples=["hello_txt"])
    original_name: str = Field(examples=["hello.txt"])
    mime: str = Field(examples=["text/plain"])
    size: int = Field(examples=[6])


class EmbeddedFileDetails(EmbeddedFileInfo):
    download_path: str = Field(examples=["files/measurement.hdf5/embedded/hello_txt"])


class ParsedMetadata(BaseModel):
    acceleration: HDF5NodeInfo
    pictures: dict[str, list[str]] = Field(
        default_factory=dict, description="Picture arrays by node name (e.g. pre__tool_pictures)."
    )
    sensors: list[StoredSensor] = Field(default_factory=list)
    embedded_files: list[EmbeddedFileDetails] = Field(default_factory=list)


class EmbeddedDeleteResponse(BaseModel):
    file_name: str
    dataset_name: str
