"""HDF5 measurement files: a writer thread for the runner and a chunked reader.

File layout (readable by ``icotronic.measurement.storage.Storage`` and PyTables):

* file title ``STH Measurement Data``, zlib level 4 compression;
* table ``/acceleration`` (title ``Sensor Node Data``): ``counter`` uint8,
  ``timestamp`` uint64 (µs), one float32 column per active channel: ``x`` (first),
  ``y`` (second), ``z`` (third). Two or three active channels: one row per frame.
  One active channel: each frame's 3 samples become 3 rows with the frame's counter;
* table ``/sensors`` (title ``Sensor Data``): one row per active channel, with a
  ``channel`` column (``first``/``second``/``third``);
* attributes on ``/acceleration`` (see :class:`MeasurementWriter`);
* metadata and picture arrays as in :mod:`icoapi.measurement.metadata`.

Timestamps are microseconds since the first sample of the measurement. The runner
passes frame timestamps in seconds relative to the first frame. With one active
channel, sample ``i`` (0, 1, 2) of a frame gets ``frame time + i / channel rate``:
the samples of a frame are evenly spaced at the per-channel sample rate. (This is
``frame time - (2 - i) / rate`` shifted by the constant ``2 / rate``, so that no
timestamp is negative and the first sample is at 0.)

PyTables is not thread-safe: every PyTables call in this service runs under
:data:`HDF5_LOCK`, held for one batch or chunk at a time.
"""

from __future__ import annotations

import copy
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import tables

from icoapi import __version__
from icoapi.core.tasks import run_blocking
from icoapi.measurement import metadata as metadata_io
from icoapi.measurement.conversion import CHANNELS, ChannelLayout, sensor_coefficients

logger = logging.getLogger(__name__)

HDF5_LOCK = threading.RLock()
"""Serialises all PyTables/HDF5 calls of the process (the HDF5 build is not thread-safe)."""

FILE_TITLE = "STH Measurement Data"
TABLE_TITLE = "Sensor Node Data"
SENSORS_TITLE = "Sensor Data"
FILTERS = tables.Filters(complevel=4, complib="zlib")
AXES = {"first": "x", "second": "y", "third": "z"}
EXPECTED_ROWS = 1_000_000  # sizes the table's chunks for long measurements
MAX_PENDING_ROWS = 65_536  # rows kept in memory before a flush is forced (≤ 1.4 MiB)


class StorageError(Exception):
    """The measurement file cannot take (more) data."""


class StorageBackpressureError(StorageError):
    """The writer thread fell behind: its queue stayed full for ``put_timeout`` s."""


@dataclass(frozen=True)
class SensorRow:
    """The sensor of one active measurement channel, as stored in ``/sensors``.

    ``scaling_factor``/``offset`` default to the sensor's ``k``/``d``
    (``phys = volts * k + d``)."""

    channel: str
    name: str
    sensor_id: str
    unit: str
    dimension: str
    phys_min: float
    phys_max: float
    volt_min: float
    volt_max: float
    sensor_type: str | None = None
    scaling_factor: float | None = None
    offset: float | None = None
    channel_number: int | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, not {self.channel!r}")

    @property
    def coefficients(self) -> tuple[float, float]:
        """``(k, d)``: given scaling factor and offset, else computed from the ranges."""
        k, d = sensor_coefficients(self.phys_min, self.phys_max, self.volt_min, self.volt_max)
        return (
            k if self.scaling_factor is None else self.scaling_factor,
            d if self.offset is None else self.offset,
        )


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


def acceleration_description(layout: ChannelLayout) -> dict[str, Any]:
    """Columns in icotronic's order: counter, timestamp, then x/y/z."""
    columns: dict[str, Any] = {
        "counter": tables.UInt8Col(pos=0),
        "timestamp": tables.UInt64Col(pos=1),
    }
    for pos, channel in enumerate(layout.channels, start=2):
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


def describe_error(error: BaseException, limit: int = 300) -> str:
    """A one-line description (HDF5 errors carry a long library back trace)."""
    text = str(error)
    marker = "End of HDF5 error back trace"
    if marker in text:
        text = text.split(marker, 1)[1]
    text = " ".join(text.split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:limit]


_CLOSE = "close"
_DATA = "data"
_ATTRS = "attrs"
_META = "meta"


class MeasurementWriter:
    """Writes one measurement file from a dedicated thread fed by a bounded queue.

    Attributes written on ``/acceleration`` at open: ``conversion`` ("true"),
    ``icoapi_version``, ``channel_sensors`` (JSON ``{channel: {channel_number,
    sensor_id}}``), then ``attributes`` as given (e.g. ``adc_reference_voltage``,
    ``sample_rate``, ``channel_sample_rate``, ``adc_prescaler``,
    ``adc_acquisition_time``, ``adc_oversampling_rate``); numbers given for
    ``adc_reference_voltage`` are stored as text ("3.3") as upstream does, and
    icotronic's ``Sample_Rate`` text is added when the ADC values are known.
    ``Start_Time`` (local ISO time of the first sample) is written with the first
    batch unless given. At close: ``dataloss``, ``rows``, ``measurement_status``.

    Args:
        path: the file to create; an existing non-empty file is not overwritten.
        channels: active channels, a subset of ``["first", "second", "third"]`` in order.
        sensors: one row per active channel.
        attributes: initial ``/acceleration`` attributes.
        flush_interval: seconds between flushes while data arrives.
        queue_batches: queue capacity in batches.
        put_timeout: how long :meth:`append` waits on a full queue.
        channel_sample_rate: per-channel rate in Hz, used to space the three
            samples of a single-channel frame; defaults to the
            ``channel_sample_rate`` or ``sample_rate`` attribute (no spacing if
            neither is given).
    """

    def __init__(
        self,
        path: Path,
        channels: list[str],
        sensors: list[SensorRow],
        attributes: dict[str, Any],
        flush_interval: float = 1.0,
        queue_batches: int = 64,
        *,
        put_timeout: float = 2.0,
        channel_sample_rate: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.layout = ChannelLayout.of(channels)
        sensor_channels = [sensor.channel for sensor in sensors]
        if len(set(sensor_channels)) != len(sensor_channels) or not set(sensor_channels) <= set(
            self.layout.channels
        ):
            raise ValueError(
                f"sensors must belong to distinct active channels {self.layout.channels}, "
                f"got {sensor_channels}"
            )
        self.sensors = sorted(sensors, key=lambda sensor: CHANNELS.index(sensor.channel))
        self.attributes = dict(attributes)
        self.flush_interval = flush_interval
        self.put_timeout = put_timeout
        rate = channel_sample_rate or self.attributes.get("channel_sample_rate")
        if rate is None and self.layout.single:
            rate = self.attributes.get("sample_rate")
        self._sample_spacing_us = 1e6 / float(rate) if self.layout.single and rate else 0.0
        if self.layout.single and not rate:
            logger.warning(
                "No channel sample rate for %s: samples of a frame share one timestamp",
                self.path.name,
            )

        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=queue_batches)
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()
        self._close_lock = threading.Lock()
        self._closing = False
        self._error: BaseException | None = None
        self._start_time_known = "Start_Time" in self.attributes
        # Owned by the writer thread (read elsewhere only as snapshots).
        self._h5: tables.File | None = None
        self._table: Any = None
        self._pending: list[npt.NDArray[Any]] = []
        self._pending_rows = 0
        self._rows = 0
        self._flushed_rows = 0
        self._retrieved = 0
        self._lost = 0
        self._last_counter: int | None = None

    # -- caller side ---------------------------------------------------------------

    @property
    def error(self) -> BaseException | None:
        """The first exception raised in the writer thread (None if all went well)."""
        return self._error

    @property
    def rows(self) -> int:
        """Rows taken by the writer thread so far (written or about to be)."""
        return self._rows

    @property
    def flushed_rows(self) -> int:
        """Rows on disk as of the last flush."""
        return self._flushed_rows

    @property
    def dataloss(self) -> float:
        """Lost / (lost + received) frames, from the message counters written so far."""
        total = self._lost + self._retrieved
        return self._lost / total if total else 0.0

    def start(self) -> None:
        """Start the writer thread; it creates the file (errors end up in :attr:`error`)."""
        if self._thread is not None:
            raise RuntimeError("writer already started")
        self._thread = threading.Thread(
            target=self._run, name=f"hdf5-writer-{self.path.stem}", daemon=True
        )
        self._thread.start()
        # Return once the file exists (or could not be created: see ``error``),
        # so the caller can refuse to start a measurement without a file.
        self._opened.wait(timeout=30)

    def append(
        self,
        counters: npt.ArrayLike,
        timestamps_s: npt.ArrayLike,
        values: npt.ArrayLike,
    ) -> None:
        """Queue a batch of frames (the arrays are copied).

        Args:
            counters: ``(n,)`` message counters 0–255.
            timestamps_s: ``(n,)`` seconds since the measurement start.
            values: ``(n, values_per_frame)`` converted values.

        :raises StorageBackpressureError: if the queue stays full for ``put_timeout``.
        :raises StorageError: if the writer failed, is closed or was not started."""
        self._check_open()
        counter_array = np.array(counters, dtype=np.uint8).reshape(-1)
        time_array = np.array(timestamps_s, dtype=np.float64).reshape(-1)
        value_array = np.array(values, dtype=np.float32)
        frames = len(counter_array)
        expected = (frames, self.layout.values_per_frame)
        if len(time_array) != frames or value_array.shape != expected:
            raise ValueError(
                f"batch shapes differ: counters {counter_array.shape}, timestamps "
                f"{time_array.shape}, values {value_array.shape} (expected {expected})"
            )
        if frames == 0:
            return
        if not self._start_time_known:
            self._start_time_known = True
            elapsed = float(time_array[-1] - time_array[0])
            first = datetime.now() - timedelta(seconds=max(elapsed, 0.0))
            self._put((_ATTRS, {"Start_Time": first.isoformat()}))
        self._put((_DATA, counter_array, time_array, value_array))

    def set_attributes(self, **attrs: Any) -> None:
        """Queue ``/acceleration`` attributes; applied in order with the data.
        A ``Start_Time`` given here replaces the one :meth:`append` would write."""
        self._check_open()
        if "Start_Time" in attrs:
            self._start_time_known = True
        self._put((_ATTRS, dict(attrs)))

    def write_metadata(self, prefix: Literal["pre", "post"], metadata: dict[str, Any]) -> None:
        """Queue pre- or post-measurement metadata (a copy is taken now)."""
        if prefix not in metadata_io.PREFIXES:
            raise ValueError(f"prefix must be 'pre' or 'post', not {prefix!r}")
        self._check_open()
        self._put((_META, prefix, copy.deepcopy(metadata)))

    def close(self, final_attributes: dict[str, Any] | None = None) -> None:
        """Drain the queue, write the final attributes and close the file. Blocks;
        call it from a thread (or use :meth:`aclose`). Idempotent.

        ``final_attributes`` override the computed ``dataloss``/``rows`` and the
        default status ``"completed"``; after a writer error the status becomes
        ``"error: <text>"`` unless it already starts with ``error``."""
        with self._close_lock:
            if self._closing:
                thread = self._thread
                if thread is not None:
                    thread.join()
                return
            self._closing = True
        thread = self._thread
        if thread is None:
            return
        item = (_CLOSE, dict(final_attributes or {}))
        while thread.is_alive():
            try:
                self._queue.put(item, timeout=0.2)
                break
            except queue.Full:
                continue
        thread.join()

    async def aclose(self, final_attributes: dict[str, Any] | None = None) -> None:
        await run_blocking(self.close, final_attributes)

    def _check_open(self) -> None:
        if self._thread is None:
            raise StorageError("The measurement writer was not started.")
        if self._error is not None:
            raise StorageError(
                f"Writing the measurement file failed: {describe_error(self._error)}"
            ) from self._error
        if self._closing:
            raise StorageError("The measurement file is closed.")

    def _put(self, item: tuple[Any, ...]) -> None:
        try:
            self._queue.put(item, timeout=self.put_timeout)
        except queue.Full:
            raise StorageBackpressureError(
                f"Writing {self.path.name} fell behind: {self._queue.maxsize} batches "
                f"waited more than {self.put_timeout} s."
            ) from None

    # -- writer thread -------------------------------------------------------------

    def _run(self) -> None:
        # Rows are collected in memory (at most MAX_PENDING_ROWS) and written together
        # with the flush. Between two flushes the file on disk is left alone, so a
        # process killed then leaves a consistent file; HDF5 has no journal, and
        # writes spread over the interval (chunk or B-tree evictions) could leave
        # references past the end of the file recorded at the last flush.
        try:
            with HDF5_LOCK:
                self._open()
        except Exception as error:
            self._fail(error)
        finally:
            self._opened.set()
        last_flush = time.monotonic()
        while True:
            timeout = None
            if self._pending:
                timeout = max(0.0, last_flush + self.flush_interval - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None and item[0] == _CLOSE:
                self._finish(item[1])
                return
            if item is not None and self._error is None:
                try:
                    if item[0] == _DATA:
                        self._collect_rows(item[1], item[2], item[3])
                    else:
                        with HDF5_LOCK:
                            self._write_pending()  # keep data and attributes in order
                            self._apply(item)
                            self._flush()
                        last_flush = time.monotonic()
                except Exception as error:
                    self._fail(error)
            due = time.monotonic() - last_flush >= self.flush_interval
            if self._pending and (due or self._pending_rows >= MAX_PENDING_ROWS):
                try:
                    with HDF5_LOCK:
                        self._flush()
                except Exception as error:
                    self._fail(error)
                last_flush = time.monotonic()
            if self._error is not None:
                self._pending.clear()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
            logger.error(
                "Writing measurement file %s failed: %s",
                self.path,
                describe_error(error),
                exc_info=error,
            )

    def _open(self) -> None:
        if self.path.exists() and self.path.stat().st_size > 0:
            raise FileExistsError(f"Measurement file {self.path} already exists")
        self._h5 = tables.open_file(self.path, mode="w", title=FILE_TITLE, filters=FILTERS)
        self._table = self._h5.create_table(
            "/",
            "acceleration",
            description=acceleration_description(self.layout),
            title=TABLE_TITLE,
            expectedrows=EXPECTED_ROWS,
        )
        for key, value in self._initial_attributes().items():
            self._table.attrs[key] = attribute_value(value)
        sensors = self._h5.create_table(
            "/", "sensors", description=sensors_description(), title=SENSORS_TITLE
        )
        if self.sensors:
            rows = np.zeros(len(self.sensors), dtype=sensors.dtype)
            for index, sensor in enumerate(self.sensors):
                for name, size in SENSOR_STRINGS.items():
                    rows[name][index] = _utf8(getattr(sensor, name), size)
                k, d = sensor.coefficients
                for name in SENSOR_FLOATS[:4]:
                    rows[name][index] = getattr(sensor, name)
                rows["scaling_factor"][index] = k
                rows["offset"][index] = d
            sensors.append(rows)
        self._flush()

    def _initial_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "conversion": "true",
            "icoapi_version": __version__,
            "channel_sensors": {
                sensor.channel: {
                    "channel_number": sensor.channel_number,
                    "sensor_id": sensor.sensor_id,
                }
                for sensor in self.sensors
            },
        }
        attrs.update(self.attributes)
        voltage = attrs.get("adc_reference_voltage")
        if isinstance(voltage, int | float):
            attrs["adc_reference_voltage"] = str(voltage)
        adc = [
            attrs.get(key)
            for key in (
                "sample_rate",
                "adc_prescaler",
                "adc_acquisition_time",
                "adc_oversampling_rate",
            )
        ]
        if "Sample_Rate" not in attrs and all(isinstance(v, int | float) for v in adc):
            # icotronic's own text form (Storage.write_sample_rate)
            attrs["Sample_Rate"] = (
                f"{adc[0]:.2f} Hz (Prescaler: {adc[1]}, Acquisition Time: {adc[2]}, "
                f"Oversampling Rate: {adc[3]})"
            )
        return attrs

    def _apply(self, item: tuple[Any, ...]) -> None:
        if item[0] == _ATTRS:
            for key, value in item[1].items():
                self._table.attrs[key] = attribute_value(value)
        elif item[0] == _META:
            assert self._h5 is not None
            metadata_io.write_metadata(self._h5, item[1], item[2])

    def _collect_rows(
        self,
        counters: npt.NDArray[np.uint8],
        timestamps_s: npt.NDArray[np.float64],
        values: npt.NDArray[np.float32],
    ) -> None:
        frame_us = np.rint(np.clip(timestamps_s, 0.0, None) * 1e6).astype(np.uint64)
        per_frame = self.layout.rows_per_frame
        rows = np.empty(len(counters) * per_frame, dtype=self._table.dtype)
        if self.layout.single:
            offsets = np.rint(np.arange(per_frame) * self._sample_spacing_us).astype(np.uint64)
            rows["timestamp"] = (frame_us[:, None] + offsets[None, :]).reshape(-1)
            rows["counter"] = np.repeat(counters, per_frame)
            rows[AXES[self.layout.channels[0]]] = values.reshape(-1)
        else:
            rows["timestamp"] = frame_us
            rows["counter"] = counters
            for index, channel in enumerate(self.layout.channels):
                rows[AXES[channel]] = values[:, index]
        self._pending.append(rows)
        self._pending_rows += len(rows)
        self._rows += len(rows)
        self._count_frames(counters)

    def _count_frames(self, counters: npt.NDArray[np.uint8]) -> None:
        # Same rule as icotronic's calculate_dataloss_stats: a repeated counter is
        # skipped, otherwise (counter - previous) mod 256 - 1 frames were lost.
        sequence = counters.astype(np.int16)
        if self._last_counter is None:
            self._retrieved += 1
        else:
            sequence = np.concatenate(([self._last_counter], sequence))
        steps = np.diff(sequence) % 256
        steps = steps[steps != 0]
        self._retrieved += len(steps)
        self._lost += int(steps.sum()) - len(steps)
        self._last_counter = int(counters[-1])

    def _write_pending(self) -> None:
        if self._pending:
            rows = np.concatenate(self._pending)
            self._pending.clear()
            self._pending_rows = 0
            self._table.append(rows)

    def _flush(self) -> None:
        """Append the collected rows and flush table and file (caller holds the lock)."""
        assert self._h5 is not None
        self._write_pending()
        self._table.flush()
        self._h5.flush()
        self._flushed_rows = self._table.nrows

    def _finish(self, final_attributes: dict[str, Any]) -> None:
        if self._h5 is None or not self._h5.isopen:
            return
        with HDF5_LOCK:
            try:
                self._flush()  # the rows still collected in memory
            except Exception as error:
                self._fail(error)
            attrs: dict[str, Any] = {
                "dataloss": self.dataloss,
                "rows": int(self._table.nrows),
                "measurement_status": "completed",
            }
            attrs.update(final_attributes)
            status = str(attrs["measurement_status"])
            if self._error is not None and not status.startswith("error"):
                attrs["measurement_status"] = f"error: {describe_error(self._error)}"
            try:
                for key, value in attrs.items():
                    self._table.attrs[key] = attribute_value(value)
                self._flush()
            except Exception as error:
                self._fail(error)
            try:
                self._h5.close()
            except Exception as error:
                self._fail(error)


def iter_channel(
    path: Path, column: str, chunk_rows: int = 65536
) -> Iterator[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
    """Yield ``(timestamps in s, values)`` of one channel, ``chunk_rows`` rows at a time.

    ``column`` is a channel name (``first``) or a column name (``x``). The file
    must not be open for writing in this process.

    :raises KeyError: if the table has no such column."""
    name = AXES.get(column, column)
    with HDF5_LOCK:
        h5 = tables.open_file(path, mode="r", IO_BUFFER_SIZE=1024 * 1024)
    try:
        with HDF5_LOCK:
            table = h5.get_node("/acceleration")
            if name not in table.colnames or name in ("counter", "timestamp"):
                raise KeyError(f"{path.name} has no channel column {column!r}")
            nrows = table.nrows
        for start in range(0, nrows, chunk_rows):
            with HDF5_LOCK:
                chunk = table.read(start, min(start + chunk_rows, nrows))
            yield chunk["timestamp"] / 1e6, chunk[name].astype(np.float64)
    finally:
        with HDF5_LOCK:
            h5.close()
