"""Request and response bodies of the dataspace endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from icoapi.dataspace.connectors import RemoteObject
from icoapi.dataspace.queue import Job


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
    state: str = Field(description="queued, uploading, done, failed or cancelled.")
    attempts: int
    last_error: str | None
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
    """A measurement file in the dataspace."""

    name: str
    id: int | None = Field(description="Trident object id; null for S3.")
    size: int | None
    etag: str | None
    last_modified: str | None
    status: str = Field(description="available, updating or created.")

    @classmethod
    def from_remote(cls, remote: RemoteObject) -> RemoteFile:
        return cls(
            name=remote.name,
            id=remote.id,
            size=remote.size,
            etag=remote.etag,
            last_modified=remote.last_modified.isoformat() if remote.last_modified else None,
            status=remote.status,
        )
