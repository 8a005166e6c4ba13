"""STUB: replaced by the files implementation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


class MeasurementFileService:
    def __init__(self, directory: Path, files_in_use: Callable[[], set[str]]) -> None:
        self.directory = directory
