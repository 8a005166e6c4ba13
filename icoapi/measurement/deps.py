"""FastAPI dependencies of the measurement domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from icoapi.measurement.service import MeasurementService


def get_measurement(connection: HTTPConnection) -> MeasurementService:
    service: MeasurementService = connection.app.state.measurement
    return service


MeasurementDep = Annotated[MeasurementService, Depends(get_measurement)]
