"""The layout of a measurement file (readable by ``icotronic.measurement.Storage``).

* file title ``STH Measurement Data``, zlib level 4 compression;
* table ``/acceleration`` (title ``Sensor Node Data``): ``counter`` uint8,
  ``timestamp`` uint64 (µs since the first sample), one float32 column per active
  channel: ``x`` (first), ``y`` (second), ``z`` (third). Two or three active
  channels: one row per frame. One active channel: each frame's 3 samples become 3
  rows with the frame's counter, spaced by the per-channel sample period;
* table ``/sensors`` (title ``Sensor Data``): one row per active channel, with a
  ``channel`` column (``first``/``second``/``third``);
* attributes on ``/acceleration`` (see :class:`icoapi.hdf5.writer.MeasurementWriter`);
* metadata and picture arrays as in :mod:`icoapi.hdf5.metadata`.

PyTables is not thread-safe: every PyTables call in this service runs under
:data:`HDF5_LOCK`, held for one batch or chunk at a time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import tables

from icoapi import __version__

HDF5_LOCK = threading.RLock()
"""Serialises all PyTables/HDF5 calls of the process (the HDF5 build is not thread-safe)."""

FILE_TITLE = "STH Measurement Data"
TABLE_TITLE = "Sensor Node Data"
SENSORS_TITLE = "Sensor Data"
FILTERS = tables.Filters(complevel=4, complib="zlib")
CHANNELS = ("first", "second", "third")
AXES = {"first": "x", "second": "y", "third": "z"}
EXPECTED_ROWS = 1_000_000  # sizes the table's chunks for long measurements
ACCELERATION_PATH = "/acceleration"
SENSORS_PATH = "/sensors"
EMBEDDED_GROUP = "embedded_files"


@dataclass(frozen=True)
class FrameShape:
    """How the samples of one streaming frame sit in the frame and in the file.

    A frame carries 3 values when one or three channels are active (one channel:
    three consecutive samples of it) and 2 values when two are; one active channel
    gives 3 file rows per frame, more give one. The writer, recovery and (through
    ``ChannelLayout``) the converter and the live stream use this one definition."""

    values_per_frame: int
    rows_per_frame: int

    @classmethod
    def of(cls, channels: Sequence[str]) -> FrameShape:
        count = len(channels)
        if not 1 <= count <= len(CHANNELS):
            raise ValueError(f"1 to {len(CHANNELS)} channels, not {count}")
        return cls(values_per_frame=2 if count == 2 else 3, rows_per_frame=3 if count == 1 else 1)


def data_bytes_per_second(channels: Sequence[str], sample_rate: float) -> float:
    """Table bytes per second, uncompressed, at an ADC ``sample_rate`` (all channels).

    An upper bound of what a file grows by: zlib only shrinks typical data (the
    simulator's to a quarter). Journal and disk estimates use it."""
    shape = FrameShape.of(channels)
    row_bytes = 1 + 8 + 4 * len(channels)  # counter, timestamp, one float per channel
    return sample_rate / shape.values_per_frame * shape.rows_per_frame * row_bytes


@dataclass(frozen=True)
class SensorRow:
    """The sensor of one active measurement channel, as stored in ``/sensors``.

    ``scaling_factor``/``offset`` are the sensor's conversion coefficients ``k``/``d``
    (``phys = volts * k + d``), given by the caller (the sensors package computes them)."""

    channel: str
    name: str
    sensor_id: str
    unit: str
    dimension: str
    phys_min: float
    phys_max: float
    volt_min: float
    volt_max: float
    scaling_factor: float
    offset: float
    sensor_type: str | None = None
    channel_number: int | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, not {self.channel!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


SENSOR_STRINGS = {
    "channel": 16,
    "name": 100,
    "sensor_type": 100,
    "sensor_id": 100,
    "unit": 32,
    "dimension": 100,
}
SENSOR_FLOATS = (
    "phys_min",
    "phys_max",
    "volt_min",
    "volt_max",
    "scaling_factor",
    "offset",
)


def sensors_description() -> dict[str, Any]:
    columns: dict[str, Any] = {
        name: tables.StringCol(size, pos=pos)
        for pos, (name, size) in enumerate(SENSOR_STRINGS.items())
    }
    for pos, name in enumerate(SENSOR_FLOATS, start=len(columns)):
        columns[name] = tables.Float32Col(pos=pos)
    return columns


def acceleration_description(channels: Sequence[str]) -> dict[str, Any]:
    """Columns in icotronic's order: counter, timestamp, then x/y/z."""
    columns: dict[str, Any] = {
        "counter": tables.UInt8Col(pos=0),
        "timestamp": tables.UInt64Col(pos=1),
    }
    for pos, channel in enumerate(channels, start=2):
        columns[AXES[channel]] = tables.Float32Col(pos=pos)
    return columns


def _utf8(text: str | None, size: int) -> bytes:
    """UTF-8 bytes of ``text`` cut to ``size`` bytes at a character boundary."""
    return (text or "").encode("utf-8")[:size].decode("utf-8", errors="ignore").encode("utf-8")


def attribute_value(value: Any) -> Any:
    """A value as HDF5 attributes store it: mappings and sequences as JSON text."""
    if isinstance(value, Mapping | list | tuple) or value is None:
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | bool | int | float | np.generic):
        return value
    return str(value)


def json_attribute(value: Any) -> Any:
    """An attribute value as JSON can carry it (numpy scalars as Python numbers)."""
    stored = attribute_value(value)
    return stored.item() if isinstance(stored, np.generic) else stored


def loss_fraction(lost: int, received: int) -> float:
    """The ``dataloss`` of a measurement: lost / (lost + received) frames."""
    total = lost + received
    return lost / total if total else 0.0


def status_with_problems(status: str, problems: list[str]) -> str:
    """A file status that reports ``problems`` (kept if it is an error already)."""
    if problems and not status.startswith("error"):
        return f"error: {'; '.join(problems)}"
    return status


def describe_error(error: BaseException, limit: int = 300) -> str:
    """A one-line description (HDF5 errors carry a long library back trace)."""
    text = str(error)
    marker = "End of HDF5 error back trace"
    if marker in text:
        text = text.split(marker, 1)[1]
    text = " ".join(text.split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:limit]


def create_measurement_file(
    path: Path,
    channels: Sequence[str],
    sensors: Sequence[SensorRow],
    attributes: Mapping[str, Any],
) -> tuple[tables.File, Any]:
    """Create the file with its two tables and the initial attributes (caller holds
    :data:`HDF5_LOCK`). Returns the open file and its ``/acceleration`` table."""
    h5 = tables.open_file(str(path), mode="w", title=FILE_TITLE, filters=FILTERS)
    try:
        table = h5.create_table(
            "/",
            "acceleration",
            description=acceleration_description(channels),
            title=TABLE_TITLE,
            expectedrows=EXPECTED_ROWS,
        )
        for key, value in attributes.items():
            table.attrs[key] = attribute_value(value)
        sensor_table = h5.create_table(
            "/", "sensors", description=sensors_description(), title=SENSORS_TITLE
        )
        if sensors:
            rows = np.zeros(len(sensors), dtype=sensor_table.dtype)
            for index, sensor in enumerate(sensors):
                for name, size in SENSOR_STRINGS.items():
                    rows[name][index] = _utf8(getattr(sensor, name), size)
                for name in SENSOR_FLOATS:
                    rows[name][index] = getattr(sensor, name)
            sensor_table.append(rows)
    except BaseException:
        h5.close()
        raise
    return h5, table


def initial_attributes(
    sensors: Sequence[SensorRow], attributes: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``/acceleration`` attributes a new file starts with (see
    :class:`icoapi.hdf5.writer.MeasurementWriter`)."""
    attrs: dict[str, Any] = {
        "conversion": "true",
        "icoapi_version": __version__,
        "channel_sensors": {
            sensor.channel: {"channel_number": sensor.channel_number, "sensor_id": sensor.sensor_id}
            for sensor in sensors
        },
    }
    attrs.update(attributes)
    voltage = attrs.get("adc_reference_voltage")
    if isinstance(voltage, int | float):
        attrs["adc_reference_voltage"] = str(voltage)
    adc = [
        attrs.get(key)
        for key in ("sample_rate", "adc_prescaler", "adc_acquisition_time", "adc_oversampling_rate")
    ]
    if "Sample_Rate" not in attrs and all(isinstance(v, int | float) for v in adc):
        # icotronic's own text form (Storage.write_sample_rate)
        attrs["Sample_Rate"] = (
            f"{adc[0]:.2f} Hz (Prescaler: {adc[1]}, Acquisition Time: {adc[2]}, "
            f"Oversampling Rate: {adc[3]})"
        )
    return attrs
