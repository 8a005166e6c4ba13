"""Errors of the measurement domain."""

from __future__ import annotations

from icoapi.core.errors import (
    ConflictError,
    IcoapiError,
    IncorrectStateError,
    UnprocessableError,
)

__all__ = [
    "DiskReserveError",
    "IncorrectStateError",
    "InvalidInstructionsError",
    "MeasurementFileError",
    "MeasurementStopTimeoutError",
    "PostMetaPendingError",
]


class InvalidInstructionsError(UnprocessableError):
    default_detail = "Invalid measurement instructions."


class MeasurementStopTimeoutError(IcoapiError):
    status_code = 504
    default_detail = "Failed to stop measurement within timeout."


class MeasurementFileError(IcoapiError):
    status_code = 500
    default_detail = "Cannot create the measurement file."


class PostMetaPendingError(ConflictError):
    default_detail = (
        "The previous measurement waits for its post-measurement metadata. Send it with "
        "POST /api/v1/measurement/post_meta, or finish without it with "
        "POST /api/v1/measurement/stop."
    )


class DiskReserveError(IcoapiError):
    """Starting would eat into the disk reserve (``ICOAPI_DISK_RESERVE_BYTES``)."""

    status_code = 507
    default_detail = "Not enough free disk space for a measurement."
