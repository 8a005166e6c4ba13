"""STUB: replaced by the sensors implementation."""

from __future__ import annotations

from pathlib import Path


class SensorCatalog:
    def __init__(self, path: Path) -> None:
        self.path = path
