"""Errors of the dataspace domain.

Connectors raise :class:`DataspaceError` subclasses only (never a library's own
exception), so every failure of the remote side reaches clients as a 502 or 504
with a ``detail`` that says what happened, and the upload queue can tell a
passing outage (retry) from a refusal (give up after a few attempts)."""

from __future__ import annotations

from icoapi.core.errors import BadRequestError, ConflictError, IcoapiError, NotFoundError


class DataspaceError(IcoapiError):
    """The dataspace could not do what was asked."""

    status_code = 502
    default_detail = "The dataspace request failed."
    # True: the outage may pass by itself (network, timeout, 5xx); retry later.
    transient = True


class DataspaceUnreachableError(DataspaceError):
    default_detail = "The dataspace cannot be reached."


class DataspaceTimeoutError(DataspaceError):
    status_code = 504
    default_detail = "The dataspace did not answer in time."


class DataspaceAuthError(DataspaceError):
    default_detail = "The dataspace refused the credentials."
    transient = False


class DataspaceRefusedError(DataspaceError):
    """The dataspace answered, but refused the request (4xx)."""

    default_detail = "The dataspace refused the request."
    transient = False


class DataspaceProtocolError(DataspaceError):
    """The answer could not be understood (not JSON, missing fields)."""

    default_detail = "The dataspace sent an answer that cannot be understood."


class IntegrityError(DataspaceError):
    """The stored object differs from the local file."""

    default_detail = "The uploaded object does not match the local file."
    transient = False


class UnreadableFileError(DataspaceError):
    """The local file is not a readable HDF5 file; uploading it again will not help."""

    default_detail = "The file is not a readable HDF5 file."
    transient = False


class FileBusyUploadError(DataspaceError):
    """The file is still being written; the upload is tried again later."""

    status_code = 409
    default_detail = "The file is still being written."


class FileChangedError(DataspaceError):
    """The local file changed while it was uploaded; it is uploaded again."""

    default_detail = "The file changed during the upload."


class DataspaceDisabledError(ConflictError):
    default_detail = (
        "The dataspace is not enabled. Enable it in dataspace.yaml (POST /config/dataspace)."
    )


class DataspaceMisconfiguredError(ConflictError):
    default_detail = "dataspace.yaml is not valid."


class UploadFileMissingError(NotFoundError):
    default_detail = "The file of the upload no longer exists."


class UploadCancelledByUserError(ConflictError):
    default_detail = "The upload was cancelled."


def job_failure(status: int | None, detail: str | None) -> IcoapiError:
    """The error a failed job answers with: its last error's kind and text."""
    for kind in (DataspaceTimeoutError, UploadFileMissingError, DataspaceError):
        if kind.status_code == status:
            return kind(detail)
    return DataspaceError(detail)


class FileIdRequiredError(BadRequestError):
    default_detail = "File ID is required"


class JobNotFoundError(NotFoundError):
    default_detail = "Upload job not found."


class JobStateError(ConflictError):
    default_detail = "The upload job cannot be changed in its current state."
