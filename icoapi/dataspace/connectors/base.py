"""What every dataspace connector offers, and the connection settings they share.

A connector is blocking and thread-safe enough for one uploader plus occasional
listings; the service calls it in worker threads. Every network call has a
timeout. Connectors raise only :mod:`icoapi.dataspace.errors` exceptions, and
never put a password, token, key or presigned URL into an exception text or log
line. Files are streamed from disk: memory stays bounded by one part whatever
the size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024
# Multipart above this size; each part is this large (S3 allows 5 MiB .. 5 GiB
# per part and 10 000 parts, so 8 MiB parts cover files up to 78 GiB and larger
# files get larger parts).
PART_SIZE = 8 * MIB
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0

AutoUpload = Annotated[bool, Field(strict=True)]

Progress = Callable[[int], None]
"""Called with the number of bytes sent so far."""


class ConnectionSettings(BaseModel):
    """The keys every enabled connection has; each connector's model adds its own.
    Secrets are fields of type ``SecretStr``: masking in ``GET /config/dataspace``
    and log redaction follow these declarations."""

    model_config = ConfigDict(extra="allow")

    enabled: Literal[True]
    connector: str
    auto_upload: AutoUpload = False


@dataclass(frozen=True)
class ConnectorOptions:
    """Limits a connector is built with (tests shorten them)."""

    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    part_size: int = PART_SIZE


@dataclass(frozen=True)
class RemoteObject:
    """One measurement file in the dataspace. ``details`` are the fields of the
    reference's RemoteObjectDetails the connector knows (``GET /cloud``)."""

    name: str
    id: int | None
    size: int | None
    etag: str | None
    last_modified: datetime | None
    status: str  # available, updating, created, deleted (S3 and folders: available)
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def live(self) -> bool:
        return self.status != "deleted"


@dataclass(frozen=True)
class UploadResult:
    remote: RemoteObject
    etag: str  # the checksum of the bytes sent, in the form the connector lists
    listing: list[RemoteObject] | None = None  # a fresh listing, if the connector made one


@dataclass
class Upload:
    """One attempt to send a file. The callbacks let the queue remember what the
    attempt created remotely, so that a retry reuses it (a Trident object) or
    cleans it up (an S3 multipart upload)."""

    path: Path
    name: str
    size: int
    metadata: dict[str, Any]
    remote_id: int | None
    progress: Progress
    remote_created: Callable[[int], None] = lambda remote_id: None
    multipart_started: Callable[[str], None] = lambda upload_id: None


class Connector(Protocol):
    kind: str
    manage_url: str | None

    def authenticate(self) -> None: ...

    def list_objects(self) -> list[RemoteObject]: ...

    def upload(self, upload: Upload) -> UploadResult: ...

    def checksum_scheme(self, etag: str, size: int) -> int:
        """How ``etag`` of a ``size``-byte object was computed (see
        :func:`icoapi.dataspace.connectors.checksums.file_checksum`)."""
        ...

    def abort_multipart(self, name: str, upload_id: str) -> None:
        """Abort an upload an earlier attempt left behind (no-op where there is none)."""
        ...

    def abort_stale_multipart(self, older_than: float) -> int:
        """Abort unfinished uploads under this service's prefix older than
        ``older_than`` seconds; returns how many."""
        ...

    def close(self) -> None: ...


def when(value: Any) -> datetime | None:
    """A timestamp from the dataspace (ISO text, ``Z`` allowed; naive = UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def host_of(url: str) -> str:
    """Scheme, host and port only: paths may carry signatures."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
