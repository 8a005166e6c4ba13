"""What the metrics read from the services, in one place.

:class:`MetricSources` names the service objects; the collector reads their
in-memory state at scrape time on the event loop. :func:`read_blocking` does
the reads that touch the disk (free space, the upload queue's database) and
runs in a worker thread. :func:`read_uploads` is the one adapter to the
dataspace package: if that package changes shape, only it changes here."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from icoapi.core.settings import Settings
from icoapi.dataspace.service import DataspaceService
from icoapi.measurement.service import MeasurementService
from icoapi.state.service import StateService
from icoapi.system.service import ICOSystem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricSources:
    system: ICOSystem
    measurement: MeasurementService
    state: StateService
    dataspace: DataspaceService
    measurements_folder: Path
    settings: Settings


@dataclass(frozen=True)
class UploadSnapshot:
    jobs: dict[str, int]
    uploaded_bytes: int
    failed_attempts: int
    enabled: bool
    healthy: bool


@dataclass(frozen=True)
class BlockingReadings:
    uploads: UploadSnapshot | None
    disk_free_bytes: int | None


def read_uploads(dataspace: DataspaceService) -> UploadSnapshot:
    """The upload queue by job state and the uploader's counters (blocking: reads
    the queue's database)."""
    jobs = dataspace.jobs_by_state()
    counts = dataspace.counts
    return UploadSnapshot(
        jobs={state.value: count for state, count in jobs.items()},
        uploaded_bytes=counts.bytes_uploaded,
        failed_attempts=counts.failed_attempts,
        enabled=dataspace.enabled,
        healthy=dataspace.healthy,
    )


def disk_reserve_bytes(settings: Settings) -> int | None:
    """The disk reserve setting, once the service has one (``ICOAPI_DISK_RESERVE_BYTES``)."""
    value: Any = getattr(settings, "ICOAPI_DISK_RESERVE_BYTES", None)
    return int(value) if isinstance(value, int | float) else None


def read_blocking(sources: MetricSources) -> BlockingReadings:
    """The readings that may wait for the disk; each one is skipped (its series
    left out) when it cannot be read, rather than failing the whole scrape."""
    try:
        free: int | None = shutil.disk_usage(sources.measurements_folder).free
    except OSError as error:
        logger.debug("Metrics: free space of %s unknown: %s", sources.measurements_folder, error)
        free = None
    try:
        uploads: UploadSnapshot | None = read_uploads(sources.dataspace)
    except Exception as error:  # a closed or broken queue database
        logger.debug("Metrics: upload queue not readable: %s", error)
        uploads = None
    return BlockingReadings(uploads=uploads, disk_free_bytes=free)
