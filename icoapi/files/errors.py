"""Errors of the measurement-files domain (details as :mod:`icoapi.core.errors` says)."""

from __future__ import annotations

from icoapi.core.errors import (
    BadRequestError,
    ConflictError,
    IcoapiError,
    NotFoundError,
    UnprocessableError,
)

# Upload errors are raised while the HTTP layer receives a file; the files
# domain reports them, so they are part of its errors too.
from icoapi.core.uploads import InvalidUploadError, UploadTooLargeError

__all__ = [
    "AccelerationDataNotFoundError",
    "FileInUseError",
    "FileOperationError",
    "InvalidFileNameError",
    "InvalidHDF5Error",
    "InvalidUploadError",
    "MeasurementFileNotFoundError",
    "UploadTooLargeError",
]


class InvalidFileNameError(BadRequestError):
    default_detail = (
        "Invalid file name: expected the name of a measurement file (*.hdf5) in the "
        "measurement directory, without path separators or '..'."
    )


class MeasurementFileNotFoundError(NotFoundError):
    default_detail = "File not found. Check your measurement directory."


class InvalidHDF5Error(UnprocessableError):
    default_detail = "Target file is not a valid HDF5 file."


class AccelerationDataNotFoundError(NotFoundError):
    default_detail = "Acceleration data not found in HDF5 file"


class FileInUseError(ConflictError):
    default_detail = "The file is being written by a running measurement."


class FileOperationError(IcoapiError):
    status_code = 500
    default_detail = "The file operation failed."


class EmbeddedFileTooLargeError(UnprocessableError):
    default_detail = "The embedded file is too large to be read."
