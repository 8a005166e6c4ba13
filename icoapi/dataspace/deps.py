"""FastAPI dependencies of the dataspace domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from icoapi.dataspace.service import DataspaceService


def get_dataspace(connection: HTTPConnection) -> DataspaceService:
    service: DataspaceService = connection.app.state.dataspace
    return service


DataspaceDep = Annotated[DataspaceService, Depends(get_dataspace)]
