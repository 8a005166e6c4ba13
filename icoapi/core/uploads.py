"""What a service and the HTTP layer agree on for file uploads.

A service states its rules (:class:`UploadRules`) and gets the files stored in
temporary files (:class:`ReceivedFile`) from a :data:`ReceiveFiles` function
the router passes in (:func:`icoapi.core.multipart.receive_files` bound to the
request). So the service decides where files go and how large they may be,
and never sees the request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from icoapi.core.errors import BadRequestError, IcoapiError


@dataclass(frozen=True)
class UploadRules:
    directory: Path
    """Where the temporary files are created (the target's volume)."""
    max_file_size: int
    """Bytes per file."""
    max_files: int = 1
    check_filename: Callable[[str], object] | None = None
    """Called with each file's name before its data is stored; may raise."""


@dataclass(frozen=True)
class ReceivedFile:
    """An uploaded file, already stored in a temporary file the receiver owns."""

    path: Path
    filename: str
    content_type: str | None
    size: int


ReceiveFiles = Callable[[UploadRules], Awaitable[list[ReceivedFile]]]


class UploadTooLargeError(IcoapiError):
    status_code = 413
    default_detail = "The uploaded file is too large."


class InvalidUploadError(BadRequestError):
    default_detail = "The request body is not valid multipart/form-data."
