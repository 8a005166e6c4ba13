"""Capacity of the volume that holds the measurements."""

from __future__ import annotations

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
