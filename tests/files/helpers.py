"""Constants and a measurement-file writer shared by the files tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from icoapi.hdf5.layout import SensorRow
from icoapi.hdf5.writer import MeasurementWriter
from icoapi.sensors.schemas import sensor_coefficients

API = "/api/v1"
FILE_NOT_FOUND = {"detail": "File not found. Check your measurement directory."}
INVALID_HDF5 = {"detail": "Target file is not a valid HDF5 file."}

SENSORS = {
    "first": SensorRow(
        channel="first",
        name="Acceleration 100g",
        sensor_id="acc100g_01",
        unit="g",
        dimension="Acceleration",
        phys_min=-100,
        phys_max=100,
        volt_min=0.33,
        volt_max=2.97,
        scaling_factor=sensor_coefficients(-100, 100, 0.33, 2.97)[0],
        offset=sensor_coefficients(-100, 100, 0.33, 2.97)[1],
        sensor_type="ADXL1001",
        channel_number=1,
    ),
    "second": SensorRow(
        channel="second",
        name="Temperature",
        sensor_id="temp_01",
        unit="°C",
        dimension="Temperature",
        phys_min=-40,
        phys_max=125,
        volt_min=0.772,
        volt_max=1.267,
        scaling_factor=sensor_coefficients(-40, 125, 0.772, 1.267)[0],
        offset=sensor_coefficients(-40, 125, 0.772, 1.267)[1],
        sensor_type="ADXL358C",
        channel_number=5,
    ),
    "third": SensorRow(
        channel="third",
        name="Photodiode",
        sensor_id="photo_01",
        unit="-",
        dimension="Light",
        phys_min=0,
        phys_max=1,
        volt_min=0,
        volt_max=3.3,
        scaling_factor=sensor_coefficients(0, 1, 0, 3.3)[0],
        offset=sensor_coefficients(0, 1, 0, 3.3)[1],
        channel_number=6,
    ),
}


def write_measurement(
    path: Path,
    frames: int = 2500,
    channels: tuple[str, ...] = ("first", "second", "third"),
    batch: int = 100_000,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """A measurement file as the runner writes it (values = frame index + channel/10)."""
    per_frame = 2 if len(channels) == 2 else 3
    writer = MeasurementWriter(
        path,
        list(channels),
        [SENSORS[c] for c in channels],
        {
            "adc_reference_voltage": 3.3,
            "sample_rate": 9523.81,
            "channel_sample_rate": 9523.81 / len(channels),
        },
    )
    writer.start()
    if metadata is not None:
        writer.write_metadata("pre", metadata)
    for start in range(0, frames, batch):
        index = np.arange(start, min(start + batch, frames))
        values = index[:, None] + np.arange(per_frame)[None, :] / 10
        rows = 3 if len(channels) == 1 else 1
        times = (index[:, None] + np.arange(rows)[None, :] / rows) / 3174.6
        writer.append(index % 256, times, values.astype(np.float32))
    writer.close({"measurement_status": "completed"})
    assert writer.error is None
    return path


def write_long_file(
    path: Path,
    rows: int,
    spikes: dict[tuple[int, str], float],
    block: int = 1_000_000,
    noise: bool = False,
) -> Path:
    """A long measurement file written straight with PyTables (no measuring): a
    slow sine on x, cosine on y, a constant z, samples every 105 µs, and the
    values ``spikes[(row, column)]``; with ``noise`` Gaussian noise on all three."""
    import tables

    from icoapi.hdf5.layout import acceleration_description

    with tables.open_file(str(path), "w", title="STH Measurement Data") as h5:
        table = h5.create_table(
            "/",
            "acceleration",
            acceleration_description(["first", "second", "third"]),
            title="Sensor Node Data",
            filters=tables.Filters(complevel=1, complib="zlib"),
            expectedrows=rows,
        )
        for start in range(0, rows, block):
            index = np.arange(start, min(start + block, rows))
            data = np.zeros(len(index), dtype=table.dtype)
            data["counter"] = index % 256
            data["timestamp"] = index * 105
            data["x"] = np.sin(index / 5000)
            data["y"] = np.cos(index / 7000)
            data["z"] = 0.5
            if noise:
                generator = np.random.default_rng(start)
                for column in ("x", "y", "z"):
                    data[column] = generator.normal(0, 10, len(index))
            for (row, column), value in spikes.items():
                if start <= row < start + len(index):
                    data[column][row - start] = value
            table.append(data)
        table.attrs["sample_rate"] = 9523.81
    return path
