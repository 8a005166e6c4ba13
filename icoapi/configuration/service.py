"""STUB: replaced by the configuration implementation."""

from __future__ import annotations

from icoapi.core.events import EventBus
from icoapi.core.logging import SecretRedactor
from icoapi.core.paths import AppPaths
from icoapi.sensors.service import SensorCatalog


class ConfigService:
    def __init__(
        self, paths: AppPaths, sensors: SensorCatalog, redactor: SecretRedactor, events: EventBus
    ) -> None:
        self.paths = paths
