"""HTTP layer of the sensor domain."""

from __future__ import annotations

from fastapi import APIRouter

from icoapi.core.errors import error_responses
from icoapi.core.tasks import run_blocking
from icoapi.sensors.deps import SensorCatalogDep
from icoapi.sensors.errors import SensorConfigError
from icoapi.sensors.schemas import AvailableSensorInformation

router = APIRouter(prefix="/sensor", tags=["Sensor"])


@router.get(
    "",
    response_model=AvailableSensorInformation,
    responses=error_responses(SensorConfigError),
)
async def get_sensors(catalog: SensorCatalogDep) -> AvailableSensorInformation:
    """Sensor definitions and holder configurations from ``sensors.yaml``, with the
    channel mappings resolved to sensors."""
    return await run_blocking(catalog.available)
