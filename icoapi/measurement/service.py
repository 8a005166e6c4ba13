"""STUB: replaced by the measurement implementation."""

from __future__ import annotations

from icoapi.measurement.schemas import MeasurementStatus


class MeasurementService:
    def __init__(self, **kwargs: object) -> None:
        pass

    def status(self) -> MeasurementStatus:
        return MeasurementStatus()

    def files_in_use(self) -> set[str]:
        return set()

    async def shutdown(self) -> None:
        return None
