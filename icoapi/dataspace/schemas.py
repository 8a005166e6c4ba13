"""Request and response bodies of the dataspace endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from icoapi.dataspace.connectors.base import RemoteObject
from icoapi.dataspace.queue import Job, JobState


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
    connector: str | None = Field(default=None, description="trident, s3 or folder.")
    auto_upload: bool = False
    queued: int = Field(default=0, description="Upload jobs waiting.")
    uploading: UploadProgress | None = None


class UploadRequest(BaseModel):
    filename: str = Field(examples=["milling__2025-03-01_10-15-00.hdf5"])


class UpdateRequest(BaseModel):
    filename: str = Field(examples=["milling__2025-03-01_10-15-00.hdf5"])
    file_id: int | None = Field(
        default=None,
        ge=0,
        le=2**63 - 1,
        description="The Trident object id (required for Trident; S3: ignored).",
    )


def _iso(timestamp: float | None) -> str | None:
    return None if not timestamp else datetime.fromtimestamp(timestamp, UTC).isoformat()


class UploadJob(BaseModel):
    id: int
    name: str = Field(description="The measurement file.")
    state: JobState
    attempts: int
    last_error: str | None
    error_status: int | None = Field(
        default=None, description="The HTTP status a request gets for last_error."
    )
    bytes_sent: int
    size: int | None
    progress: float | None = Field(description="bytes_sent / size (0..1).")
    remote_id: int | None = Field(description="The Trident object id, once known.")
    created: str
    updated: str
    next_attempt: str | None = Field(description="When a waiting job is tried again (UTC).")

    @classmethod
    def from_job(cls, job: Job, bytes_sent: int | None = None) -> UploadJob:
        sent = job.bytes_sent if bytes_sent is None else bytes_sent
        return cls(
            id=job.id,
            name=job.name,
            state=job.state,
            attempts=job.attempts,
            last_error=job.last_error,
            error_status=job.error_status,
            bytes_sent=sent,
            size=job.size,
            progress=min(1.0, sent / job.size) if job.size else None,
            remote_id=job.remote_id,
            created=_iso(job.created) or "",
            updated=_iso(job.updated) or "",
            next_attempt=_iso(job.next_attempt) if job.state == "queued" else None,
        )


class UploadQueueResponse(BaseModel):
    jobs: list[UploadJob] = Field(description="Newest first.")


class RemoteFile(BaseModel):
    """A measurement file in the dataspace: the reference's RemoteObjectDetails
    (Trident fills every field; S3 and folders those that have a meaning there,
    the others are null), then a short summary."""

    id: int | None = Field(description="Trident object id; null for S3 and folders.")
    bucket: str | None = None
    objectname: str | None = Field(description="Trident: object name; S3: key; folder: path.")
    name: str
    description: str | None = None
    metadata: Any = Field(default=None, description="Trident only (an S3 listing has none).")
    created_at: str | None = None
    s3_lastmodified: str | None = None
    s3_size: int | None = None
    origin: str | None = None
    author: str | None = None
    type: str | None = None
    etag: str | None = Field(description="S3: the ETag; folder: the SHA-256 of the sidecar.")
    last_status: str = Field(description="available, updating, created or deleted.")
    last_status_time: str | None = None
    secrets_count: int | None = None
    access_total_count: int | None = None
    access_week_count: int | None = None
    last_access_time: str | None = None
    active_offerings_count: int | None = None
    virtual_group: Any = None
    size: int | None
    last_modified: str | None
    status: str = Field(description="The same as last_status.")

    @classmethod
    def from_remote(cls, remote: RemoteObject) -> RemoteFile:
        known = set(cls.model_fields) - {"size", "last_modified", "status"}
        details = {key: value for key, value in remote.details.items() if key in known}
        details.setdefault("objectname", None)
        details.setdefault("etag", remote.etag)
        summary = {
            "id": remote.id,
            "name": remote.name,
            "last_status": remote.status,
            "size": remote.size,
            "last_modified": remote.last_modified.isoformat() if remote.last_modified else None,
            "status": remote.status,
        }
        try:
            return cls.model_validate({**details, **summary})
        except ValidationError:
            # A dataspace whose details have other types: the summary still holds.
            return cls.model_validate({"objectname": None, "etag": remote.etag, **summary})
