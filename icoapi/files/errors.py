"""Errors of the measurement-files domain, with the reference's exact details."""

from __future__ import annotations

from icoapi.core.errors import (
    BadRequestError,
    ConflictError,
    IcoapiError,
    NotFoundError,
    UnprocessableError,
)


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


class UploadTooLargeError(IcoapiError):
    status_code = 413
    default_detail = "The uploaded file is too large."


class InvalidUploadError(BadRequestError):
    default_detail = "The request body is not valid multipart/form-data."


class FileOperationError(IcoapiError):
    status_code = 500
    default_detail = "The file operation failed."


class EmbeddedFileTooLargeError(UnprocessableError):
    default_detail = "The embedded file is too large to be read."
