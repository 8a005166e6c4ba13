"""Fixtures of the storage tests: a writer factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from icoapi.hdf5.writer import MeasurementWriter
from tests.hdf5.helpers import ADC_ATTRIBUTES, sensor_rows


@pytest.fixture
def make_writer(tmp_path: Path) -> Iterator[Callable[..., MeasurementWriter]]:
    """Build started writers; any still open at the end are closed."""
    writers: list[MeasurementWriter] = []

    def make(channels: list[str], name: str = "m.hdf5", **options: Any) -> MeasurementWriter:
        attributes = options.pop("attributes", None)
        if attributes is None:
            attributes = dict(ADC_ATTRIBUTES)
            attributes["channel_sample_rate"] = 9523.81 / (
                1 if len(channels) == 1 else len(channels)
            )
        writer = MeasurementWriter(
            options.pop("path", tmp_path / name),
            channels,
            sensor_rows(channels),
            attributes,
            **options,
        )
        writer.start()
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        writer.close()
