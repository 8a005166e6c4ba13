"""Capacity of the volume that holds the measurements, and the reserve kept on it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import BaseModel, Field

GIB = 2**30


class DiskCapacity(BaseModel):
    """Size of the volume holding the measurement directory, in GiB (2 decimals);
    null when it cannot be read."""

    total: float | None = Field(default=None, examples=[457.38])
    available: float | None = Field(default=None, examples=[212.04])


def disk_capacity(folder: Path) -> DiskCapacity:
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return DiskCapacity()
    return DiskCapacity(total=round(usage.total / GIB, 2), available=round(usage.free / GIB, 2))


class DiskSpace(BaseModel):
    """Free space for measurements: what the reserve (``ICOAPI_DISK_RESERVE_BYTES``)
    leaves, and how long a measurement can record into it."""

    free_bytes: int | None = Field(
        description="Free bytes on the measurement volume (null: cannot be read)."
    )
    reserve_bytes: int = Field(description="Bytes kept free: measurements stop before them.")
    recordable_seconds: float | None = Field(
        description="Seconds a measurement can still record before the reserve, estimated "
        "for the running measurement's settings or else for the default ones (one "
        "channel, default ADC settings) from the uncompressed data rate."
    )


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged process can still write on ``folder``'s volume."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_space(free: int | None, reserve: int, bytes_per_second: float) -> DiskSpace:
    recordable = None
    if free is not None and bytes_per_second > 0:
        recordable = round(max(free - reserve, 0) / bytes_per_second, 1)
    return DiskSpace(free_bytes=free, reserve_bytes=reserve, recordable_seconds=recordable)


def sync_directory(folder: Path) -> None:
    """Make the renames in ``folder`` durable (best effort: not every file system,
    e.g. an SMB share, can sync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
