"""A writer thread for measurement files, fed by a bounded queue.

The caller (the measurement runner) hands over batches of frames; the thread
turns them into table rows, appends them to the journal at once and to the HDF5
file with each flush (at least once a second; in memory meanwhile, at most
``MAX_PENDING_ROWS``). See :mod:`icoapi.hdf5.layout` for the file layout,
:mod:`icoapi.hdf5.journal` for why a journal is kept and
:mod:`icoapi.hdf5.checkpoint` for how it stays a few seconds long.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import tables

from icoapi.core.tasks import run_blocking
from icoapi.hdf5 import metadata as metadata_io
from icoapi.hdf5.checkpoint import CheckpointedJournal
from icoapi.hdf5.layout import (
    AXES,
    CHANNELS,
    HDF5_LOCK,
    FrameShape,
    SensorRow,
    attribute_value,
    create_measurement_file,
    describe_error,
    initial_attributes,
    json_attribute,
    loss_fraction,
    status_with_problems,
)

logger = logging.getLogger(__name__)

MAX_PENDING_ROWS = 65_536  # rows kept in memory before a flush is forced (≤ 1.4 MiB)
CHECKPOINT_INTERVAL = 5.0  # seconds between journal restarts (see checkpoint.py)


class StorageError(Exception):
    """The measurement file cannot take (more) data."""


class StorageBackpressureError(StorageError):
    """The writer thread fell behind: its queue stayed full for ``put_timeout`` s."""


_CLOSE = "close"
_DATA = "data"
_ATTRS = "attrs"
_META = "meta"


class MeasurementWriter:
    """Writes one measurement file from a dedicated thread fed by a bounded queue.

    The writer owns the file's attributes on ``/acceleration``. At open:
    ``conversion`` ("true"), ``icoapi_version``, ``channel_sensors`` (JSON
    ``{channel: {channel_number, sensor_id}}``), then ``attributes`` as given
    (e.g. ``adc_reference_voltage``, ``sample_rate``, ``channel_sample_rate``,
    ``adc_prescaler``, ``adc_acquisition_time``, ``adc_oversampling_rate``);
    numbers given for ``adc_reference_voltage`` are stored as text ("3.3") as
    upstream does, and icotronic's ``Sample_Rate`` text is added when the ADC
    values are known. Later: whatever :meth:`set_attributes` queues (the runner
    sets ``Start_Time`` with the first batch). At close: ``frames`` (frames
    given to :meth:`append`), ``lost_frames`` (the ``lost`` counts given with
    them), ``dataloss`` (lost / (lost + frames)), ``rows``, ``measurement_status``.
    These counts are the measurement's one record of its loss: the runner reports
    them on the stream and in its log.

    Args:
        path: the file to create; an existing non-empty file is not overwritten.
        channels: active channels, a subset of ``["first", "second", "third"]`` in order.
        sensors: one row per active channel.
        attributes: initial ``/acceleration`` attributes.
        flush_interval: seconds between flushes (and journal syncs) while data arrives.
        queue_batches: queue capacity in batches.
        put_timeout: how long :meth:`append` waits on a full queue.
        journal: keep a journal next to the file (see :mod:`icoapi.hdf5.journal`).
        checkpoint_interval: seconds between journal checkpoints (see
            :mod:`icoapi.hdf5.checkpoint`).
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
        journal: bool = True,
        checkpoint_interval: float = CHECKPOINT_INTERVAL,
    ) -> None:
        self.path = Path(path)
        if not channels or list(channels) != [c for c in CHANNELS if c in channels]:
            raise ValueError(f"channels must be distinct names out of {CHANNELS} in that order")
        self.channels = tuple(channels)
        self.shape = FrameShape.of(self.channels)
        sensor_channels = [sensor.channel for sensor in sensors]
        if len(set(sensor_channels)) != len(sensor_channels) or not set(sensor_channels) <= set(
            self.channels
        ):
            raise ValueError(
                f"sensors must belong to distinct active channels {self.channels}, "
                f"got {sensor_channels}"
            )
        self.sensors = sorted(sensors, key=lambda sensor: CHANNELS.index(sensor.channel))
        self.attributes = dict(attributes)
        self.flush_interval = flush_interval
        self.put_timeout = put_timeout
        self.use_journal = journal
        self.checkpoint_interval = checkpoint_interval

        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=queue_batches)
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()
        self._close_lock = threading.Lock()
        self._closing = False
        self._error: BaseException | None = None
        self._problems: list[str] = []
        # Owned by the writer thread (read elsewhere only as snapshots).
        self._h5: tables.File | None = None
        self._table: Any = None
        self._journal: CheckpointedJournal | None = None
        self._pending: list[npt.NDArray[Any]] = []
        self._pending_rows = 0
        self._rows = 0
        self._flushed_rows = 0
        # Counted on the caller's side as batches are queued, so they are current
        # for the caller; the writer thread reads them only at close.
        self._frames = 0
        self._lost = 0

    # -- caller side ---------------------------------------------------------------

    @property
    def error(self) -> BaseException | None:
        """The first exception that stopped rows from reaching the file (None if none)."""
        return self._error

    @property
    def problems(self) -> list[str]:
        """Attribute or metadata updates that could not be written (rows went on)."""
        return list(self._problems)

    @property
    def rows(self) -> int:
        """Rows taken by the writer thread so far (written or about to be)."""
        return self._rows

    @property
    def flushed_rows(self) -> int:
        """Rows on disk as of the last flush."""
        return self._flushed_rows

    @property
    def journal_bytes(self) -> int:
        """Bytes the journal files take on disk now (0 without a journal)."""
        return self._journal.size() if self._journal is not None else 0

    @property
    def checkpoints(self) -> int:
        """Journal checkpoints done so far."""
        return self._journal.checkpoints if self._journal is not None else 0

    @property
    def frames(self) -> int:
        """Frames queued with :meth:`append` so far."""
        return self._frames

    @property
    def lost_frames(self) -> int:
        """The ``lost`` counts given to :meth:`append` so far."""
        return self._lost

    @property
    def dataloss(self) -> float:
        """Lost / (lost + received) frames, from what :meth:`append` was given."""
        return loss_fraction(self._lost, self._frames)

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
        sample_times_s: npt.ArrayLike,
        values: npt.ArrayLike,
        *,
        lost: int = 0,
    ) -> None:
        """Queue a batch of frames (the arrays are copied).

        Args:
            counters: ``(n,)`` message counters 0–255.
            sample_times_s: ``(n, rows_per_frame)`` seconds since the measurement
                start of every sample (``(n,)`` will do for one row per frame).
            values: ``(n, values_per_frame)`` converted values.
            lost: frames lost before and between these frames.

        :raises StorageBackpressureError: if the queue stays full for ``put_timeout``.
        :raises StorageError: if the writer failed, is closed or was not started."""
        self._check_open()
        counter_array = np.array(counters, dtype=np.uint8).reshape(-1)
        sample_times = np.array(sample_times_s, dtype=np.float64)
        if sample_times.ndim == 1 and self.shape.rows_per_frame == 1:
            sample_times = sample_times[:, None]
        value_array = np.array(values, dtype=np.float32)
        frames = len(counter_array)
        if sample_times.shape != (frames, self.shape.rows_per_frame) or value_array.shape != (
            frames,
            self.shape.values_per_frame,
        ):
            raise ValueError(
                f"batch shapes differ: counters {counter_array.shape}, sample times "
                f"{sample_times.shape}, values {value_array.shape} (expected "
                f"{(frames, self.shape.rows_per_frame)} and "
                f"{(frames, self.shape.values_per_frame)})"
            )
        if frames == 0 and lost == 0:
            return
        self._put((_DATA, counter_array, sample_times, value_array, int(lost)))
        self._frames += frames
        self._lost += int(lost)

    def set_attributes(self, **attrs: Any) -> None:
        """Queue ``/acceleration`` attributes; applied in order with the data."""
        self._check_open()
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

        ``final_attributes`` override the computed counts and the default status
        ``"completed"``; after a writer error the status becomes ``"error: <text>"``
        unless it already starts with ``error``."""
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
        try:
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
                        self._collect_rows(item[1], item[2], item[3], item[4])
                    else:
                        self._journal_update(item)
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
                        self._checkpoint_if_due()
                except Exception as error:
                    self._fail(error)
                last_flush = time.monotonic()

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
        attributes = initial_attributes(self.sensors, self.attributes)
        with HDF5_LOCK:
            self._h5, self._table = create_measurement_file(
                self.path, self.channels, self.sensors, attributes
            )
            self._flush()
            chunk_rows = int(self._table.chunkshape[0])
        if self.use_journal:
            self._journal = CheckpointedJournal(
                self.path,
                {
                    "channels": list(self.channels),
                    "sensors": [sensor.to_json() for sensor in self.sensors],
                    "attributes": {k: json_attribute(v) for k, v in attributes.items()},
                },
                chunk_rows,
                self.checkpoint_interval,
            )

    def _journal_update(self, item: tuple[Any, ...]) -> None:
        if self._journal is None:
            return
        if item[0] == _ATTRS:
            document = {key: json_attribute(value) for key, value in item[1].items()}
            self._journal.write_attributes(document)
        elif item[0] == _META:
            self._journal.write_metadata(item[1], metadata_io.json_document(item[2]))

    def _apply(self, item: tuple[Any, ...]) -> None:
        # A metadata or attribute that cannot be written does not stop the rows.
        try:
            if item[0] == _ATTRS:
                for key, value in item[1].items():
                    self._table.attrs[key] = attribute_value(value)
            elif item[0] == _META:
                assert self._h5 is not None
                metadata_io.write_metadata(self._h5, item[1], item[2])
        except Exception as error:
            what = "attributes" if item[0] == _ATTRS else f"{item[1]}-measurement metadata"
            problem = f"{what} not written: {describe_error(error)}"
            self._problems.append(problem)
            logger.error("Measurement file %s: %s", self.path.name, problem)

    def _collect_rows(
        self,
        counters: npt.NDArray[np.uint8],
        sample_times_s: npt.NDArray[np.float64],
        values: npt.NDArray[np.float32],
        lost: int,
    ) -> None:
        if not len(counters):
            return
        assert self._table is not None
        per_frame = self.shape.rows_per_frame
        rows = np.empty(len(counters) * per_frame, dtype=self._table.dtype)
        rows["timestamp"] = np.rint(np.clip(sample_times_s.reshape(-1), 0.0, None) * 1e6)
        if per_frame > 1:
            rows["counter"] = np.repeat(counters, per_frame)
            rows[AXES[self.channels[0]]] = values.reshape(-1)
        else:
            rows["counter"] = counters
            for index, channel in enumerate(self.channels):
                rows[AXES[channel]] = values[:, index]
        if self._journal is not None:
            self._journal.write_rows(rows, lost)
        self._pending.append(rows)
        self._pending_rows += len(rows)
        self._rows += len(rows)

    def _write_pending(self) -> None:
        if self._pending:
            rows = np.concatenate(self._pending)
            self._pending.clear()
            self._pending_rows = 0
            self._table.append(rows)

    def _flush(self) -> None:
        """Sync the journal, then append the collected rows and flush table and
        file (caller holds the lock)."""
        assert self._h5 is not None
        if self._journal is not None:
            self._journal.sync()
        self._write_pending()
        self._table.flush()
        self._h5.flush()
        self._flushed_rows = int(self._table.nrows)

    def _checkpoint_if_due(self) -> None:
        """Restart the journal when the checkpoint interval passed (caller holds
        the lock and has just flushed)."""
        if self._journal is not None and self._journal.due and not self._pending:
            self._journal.checkpoint(self._table, self._flushed_rows)

    def _finish(self, final_attributes: dict[str, Any]) -> None:
        if self._h5 is None or not self._h5.isopen:
            if self._journal is not None:
                self._journal.close(remove=False)
            return
        complete = True
        with HDF5_LOCK:
            try:
                self._flush()  # the rows still collected in memory
            except Exception as error:
                self._fail(error)
                complete = False
            attrs: dict[str, Any] = {
                "frames": self._frames,
                "lost_frames": self._lost,
                "dataloss": self.dataloss,
                "rows": int(self._table.nrows),
                "measurement_status": "completed",
            }
            attrs.update(final_attributes)
            status = str(attrs["measurement_status"])
            if self._error is not None and not status.startswith("error"):
                attrs["measurement_status"] = f"error: {describe_error(self._error)}"
            else:
                attrs["measurement_status"] = status_with_problems(status, self._problems)
            try:
                for key, value in attrs.items():
                    self._table.attrs[key] = attribute_value(value)
                self._flush()
            except Exception as error:
                self._fail(error)
                complete = False
            try:
                self._h5.close()
            except Exception as error:
                self._fail(error)
                complete = False
        if self._journal is not None:
            # A file that could not be completed keeps its journal: the next
            # start recovers the rows the HDF5 file could not take.
            self._journal.close(remove=complete)
