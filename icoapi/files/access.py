"""Opening measurement files for the files domain: the reader of
:mod:`icoapi.hdf5.reader` (behind the hostile-file check), with its errors as
the files domain's errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from icoapi.files.errors import (
    AccelerationDataNotFoundError,
    FileInUseError,
    FileOperationError,
    InvalidHDF5Error,
    MeasurementFileNotFoundError,
)
from icoapi.hdf5.reader import (
    AccelerationMissingError,
    FileBusyError,
    MeasurementReader,
    NotReadableError,
    UnsafeFileError,
    open_measurement,
)
from icoapi.hdf5.validation import FileVerdicts

IN_USE_DETAIL = (
    "The file is open in another operation (e.g. a running measurement). Try again later."
)


def refused_detail(problem: str) -> str:
    """The 422 detail for a file the hostile-file check refused."""
    return f"The file is refused and never opened: {problem}."


@contextmanager
def opened(
    path: Path, verdicts: FileVerdicts, mode: Literal["r", "a"] = "r"
) -> Iterator[MeasurementReader]:
    """:func:`icoapi.hdf5.reader.open_measurement` with the files domain's errors.

    :raises InvalidHDF5Error: not HDF5, or refused by the check (422 with the reason).
    :raises MeasurementFileNotFoundError: no such file.
    :raises AccelerationDataNotFoundError: the block needed ``/acceleration``.
    :raises FileInUseError: open in an incompatible mode (a running measurement).
    :raises FileOperationError: a file that passed the check failed to open for writing."""
    try:
        with open_measurement(path, verdicts, mode) as reader:
            yield reader
    except UnsafeFileError as error:
        message = str(error)
        if message == "not an HDF5 file":
            raise InvalidHDF5Error() from error
        raise InvalidHDF5Error(refused_detail(message)) from error
    except FileNotFoundError:
        raise MeasurementFileNotFoundError() from None
    except FileBusyError as error:
        raise FileInUseError(IN_USE_DETAIL) from error
    except AccelerationMissingError:
        raise AccelerationDataNotFoundError() from None
    except NotReadableError as error:
        if mode == "r":
            raise InvalidHDF5Error(str(error)) from error
        raise FileOperationError(str(error)) from error
