"""FastAPI dependencies of the sensor domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from icoapi.sensors.service import SensorCatalog


def get_sensor_catalog(connection: HTTPConnection) -> SensorCatalog:
    catalog: SensorCatalog = connection.app.state.sensors
    return catalog


SensorCatalogDep = Annotated[SensorCatalog, Depends(get_sensor_catalog)]
