"""The metadata sent with a file (:func:`upload_metadata`): read through the one
validated measurement-file reader of :mod:`icoapi.hdf5.reader`, so a file is
checked for hostile content before PyTables opens it, as for every other route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from icoapi.dataspace.errors import FileBusyUploadError, UnreadableFileError
from icoapi.hdf5 import reader
from icoapi.hdf5.validation import FileVerdicts, UnsafeFileError


def upload_metadata(path: Path, verdicts: FileVerdicts) -> dict[str, Any]:
    """The acceleration node info sent with a file (interface §8.2): all
    attributes, JSON text parsed, each picture parameter replaced by its count.

    :raises UnreadableFileError: (not transient) the file is refused by the check
        or is not a readable HDF5 file.
    :raises FileBusyUploadError: (transient) the file is open for writing."""
    try:
        return reader.upload_metadata(path, verdicts)
    except UnsafeFileError as error:
        raise UnreadableFileError(f"{path.name} is refused as unsafe: {error}.") from error
    except reader.NotReadableError as error:
        detail = f"{path.name} is not a readable measurement file ({error})."
        raise UnreadableFileError(detail) from error
    except reader.FileBusyError as error:
        raise FileBusyUploadError(f"{path.name} is still being written.") from error
