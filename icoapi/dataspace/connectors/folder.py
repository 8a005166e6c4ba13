"""The folder connector: a local or mounted folder (an NFS or SMB share, a USB
disk) as the dataspace.

A file is copied to a hidden temporary name in the folder, synced and renamed,
so the folder never shows half a file; its SHA-256 goes next to it as
``<name>.sha256`` (``sha256sum`` format, so ``sha256sum -c`` checks it). After
the copy the stored file is read back and its size and SHA-256 compared with
what was sent (the integrity check of the other connectors). The listing is the
folder's measurement files with the checksums of their sidecars."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from icoapi.configuration.schemas import NonEmptyStr
from icoapi.core.disk import sync_directory
from icoapi.dataspace.connectors.base import (
    ConnectionSettings,
    ConnectorOptions,
    RemoteObject,
    Upload,
    UploadResult,
)
from icoapi.dataspace.connectors.checksums import SHA256, STREAM_BLOCK, file_sha256
from icoapi.dataspace.errors import (
    DataspaceError,
    DataspaceRefusedError,
    DataspaceUnreachableError,
    IntegrityError,
)

logger = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".sha256"
PARTIAL_PREFIX = "."


def _absolute(value: str) -> str:
    if not Path(value).is_absolute():
        raise ValueError("expected an absolute path")
    return value


class FolderConnection(ConnectionSettings):
    """A folder the service copies measurement files to."""

    connector: Literal["folder"]
    path: Annotated[NonEmptyStr, AfterValidator(_absolute)] = Field(
        description="The folder (e.g. a mounted share); it must exist."
    )


class FolderConnector:
    kind = "folder"
    manage_url: str | None = None

    def __init__(self, connection: FolderConnection, options: ConnectorOptions) -> None:
        self.connection = connection
        self.folder = Path(connection.path)

    def _failure(self, what: str, error: OSError) -> DataspaceError:
        reason = error.strerror or type(error).__name__
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return DataspaceRefusedError(f"The folder {self.folder} refused {what}: {reason}.")
        # A share that is gone (ENOENT, ESTALE, EIO, ENOTCONN) may come back.
        return DataspaceUnreachableError(
            f"The folder {self.folder} is not available ({what}: {reason})."
        )

    def authenticate(self) -> None:
        try:
            if not self.folder.is_dir():
                raise DataspaceUnreachableError(
                    f"The folder {self.folder} does not exist or is not mounted."
                )
            if not os.access(self.folder, os.W_OK | os.X_OK):
                raise DataspaceRefusedError(f"The folder {self.folder} is not writable.")
        except OSError as error:
            raise self._failure("the check", error) from error

    def list_objects(self) -> list[RemoteObject]:
        try:
            entries = list(os.scandir(self.folder))
        except OSError as error:
            raise self._failure("the listing", error) from error
        names = {entry.name for entry in entries}
        objects = []
        for entry in entries:
            name = entry.name
            if name.startswith(PARTIAL_PREFIX) or name.endswith(SIDECAR_SUFFIX):
                continue
            try:
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except OSError:
                continue
            checksum = None
            if f"{name}{SIDECAR_SUFFIX}" in names:
                checksum = self._sidecar(name)
            objects.append(self._remote(name, stat.st_size, stat.st_mtime, checksum))
        return objects

    def _sidecar(self, name: str) -> str | None:
        try:
            text = (self.folder / f"{name}{SIDECAR_SUFFIX}").read_text("ascii")
        except (OSError, UnicodeDecodeError):
            return None
        digest = text.split(" ", 1)[0].strip().lower()
        return digest if len(digest) == 64 else None

    def _remote(self, name: str, size: int, mtime: float, checksum: str | None) -> RemoteObject:
        modified = datetime.fromtimestamp(mtime, UTC)
        return RemoteObject(
            name=name,
            id=None,
            size=size,
            etag=checksum,
            last_modified=modified,
            status="available",
            details={
                "bucket": None,
                "objectname": str(self.folder / name),
                "name": name,
                "s3_size": size,
                "s3_lastmodified": modified.isoformat(),
                "etag": checksum,
                "last_status": "available",
            },
        )

    def upload(self, upload: Upload) -> UploadResult:
        target = self.folder / upload.name
        partial = self.folder / f"{PARTIAL_PREFIX}{upload.name}.{uuid.uuid4().hex}.partial"
        try:
            try:
                digest = self._copy(upload, partial)
                os.replace(partial, target)
                sidecar = self.folder / f"{upload.name}{SIDECAR_SUFFIX}"
                _write_synced(sidecar, f"{digest}  {upload.name}\n".encode("ascii"))
                sync_directory(self.folder)
                stat = target.stat()
                stored = file_sha256(target)
            finally:
                partial.unlink(missing_ok=True)
        except OSError as error:
            raise self._failure("the copy", error) from error
        if stat.st_size != upload.size or stored != digest:
            raise IntegrityError(
                f"The copy of {upload.name} in {self.folder} does not match the local file "
                f"(size {stat.st_size} / {upload.size}, SHA-256 {stored} / {digest})."
            )
        remote = self._remote(upload.name, stat.st_size, stat.st_mtime, stored)
        return UploadResult(remote=remote, etag=digest)

    def _copy(self, upload: Upload, destination: Path) -> str:
        digest = hashlib.sha256()
        sent = 0
        with open(upload.path, "rb") as source, open(destination, "xb") as target:
            while sent < upload.size:
                block = source.read(min(STREAM_BLOCK, upload.size - sent))
                if not block:
                    raise DataspaceError("The file became shorter during the upload.")
                target.write(block)
                digest.update(block)
                sent += len(block)
                upload.progress(sent)
            target.flush()
            os.fsync(target.fileno())
        return digest.hexdigest()

    def checksum_scheme(self, etag: str, size: int) -> int:
        return SHA256

    def abort_multipart(self, name: str, upload_id: str) -> None:
        """Copies are whole files: nothing to abort."""

    def abort_stale_multipart(self, older_than: float) -> int:
        """Remove partial copies a killed service left behind."""
        cutoff = time.time() - older_than
        removed = 0
        try:
            for entry in os.scandir(self.folder):
                partial = entry.name.startswith(PARTIAL_PREFIX) and entry.name.endswith(".partial")
                if partial and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        except OSError as error:
            raise self._failure("the cleanup", error) from error
        return removed

    def close(self) -> None:
        pass


def _write_synced(path: Path, data: bytes) -> None:
    temporary = path.with_name(f"{PARTIAL_PREFIX}{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(temporary, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
