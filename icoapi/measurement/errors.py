"""Errors of the measurement domain."""

from __future__ import annotations

from icoapi.core.errors import IcoapiError, IncorrectStateError, UnprocessableError

__all__ = [
    "IncorrectStateError",
    "InvalidInstructionsError",
    "MeasurementFileError",
    "MeasurementStopTimeoutError",
]


class InvalidInstructionsError(UnprocessableError):
    default_detail = "Invalid measurement instructions."


class MeasurementStopTimeoutError(IcoapiError):
    status_code = 504
    default_detail = "Failed to stop measurement within timeout."


class MeasurementFileError(IcoapiError):
    status_code = 500
    default_detail = "Cannot create the measurement file."
