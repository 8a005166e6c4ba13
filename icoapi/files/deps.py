"""FastAPI dependencies of the measurement-files domain."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends
from fastapi import Path as PathParam
from starlette.requests import HTTPConnection

from icoapi.files.service import MeasurementFileService


def get_files(connection: HTTPConnection) -> MeasurementFileService:
    files: MeasurementFileService = connection.app.state.files
    return files


FilesDep = Annotated[MeasurementFileService, Depends(get_files)]


def measurement_file(
    files: FilesDep,
    name: Annotated[str, PathParam(description="Measurement file name (*.hdf5).")],
) -> Path:
    """The checked path of the measurement file ``{name}``: 400 for a bad name
    (path separators, ``..``, not ``*.hdf5``, a link leading outside), 404 if it
    does not exist. A plain ``def``: FastAPI runs it in a worker thread."""
    return files.resolve(name)


MeasurementFile = Annotated[Path, Depends(measurement_file)]
