"""STUB: replaced by the logs implementation."""

from __future__ import annotations

from icoapi.core.logging import LogFanout
from icoapi.core.paths import AppPaths
from icoapi.core.settings import Settings


class LogService:
    def __init__(self, paths: AppPaths, settings: Settings, fanout: LogFanout) -> None:
        self.paths = paths
