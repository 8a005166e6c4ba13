"""MeasurementWriter: real HDF5 files read back with PyTables and icotronic."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import tables
from icotronic.measurement.storage import Storage

from icoapi.hdf5.journal import journal_path
from icoapi.hdf5.layout import HDF5_LOCK, FrameShape
from icoapi.hdf5.reading import read_channel
from icoapi.hdf5.writer import MeasurementWriter, StorageBackpressureError, StorageError
from tests.hdf5.helpers import sensor_rows

Factory = Callable[..., MeasurementWriter]
FRAME_RATE = 3174.6  # frames per second at the default ADC settings (1 or 3 channels)


def frames(
    count: int, start: int = 0, values_per_frame: int = 3, rows_per_frame: int = 3
) -> tuple[np.ndarray, ...]:
    """Frames as the runner hands them over: counters, every sample's time, values."""
    index = np.arange(start, start + count)
    counters = (index % 256).astype(np.uint8)
    timestamps = (index[:, None] + np.arange(rows_per_frame)[None, :] / rows_per_frame) / FRAME_RATE
    values = (index[:, None] * 10 + np.arange(values_per_frame)[None, :]).astype(np.float32)
    return counters, timestamps, values


@pytest.mark.parametrize(
    "channels", [["first"], ["second"], ["first", "third"], ["first", "second", "third"]]
)
def test_round_trip(make_writer: Factory, tmp_path: Path, channels: list[str]) -> None:
    shape = FrameShape.of(channels)
    per_frame = shape.values_per_frame
    writer = make_writer(channels)
    writer.set_attributes(Start_Time="2026-01-02T03:04:05.000006")
    for start in (0, 400):  # two batches: counters continue across them
        writer.append(*frames(400, start, per_frame, shape.rows_per_frame))
    writer.close({"measurement_status": "stopped"})
    assert writer.error is None

    with tables.open_file(tmp_path / "m.hdf5") as h5:
        assert h5.title == "STH Measurement Data"
        table = h5.root.acceleration
        assert table.title == "Sensor Node Data"
        axes = [{"first": "x", "second": "y", "third": "z"}[c] for c in channels]
        assert table.colnames == ["counter", "timestamp", *axes]
        assert table.coldtypes["counter"] == np.uint8
        assert table.coldtypes["timestamp"] == np.uint64
        assert all(table.coldtypes[axis] == np.float32 for axis in axes)
        assert table.filters.complib == "zlib" and table.filters.complevel == 4
        rows = table.read()
        frame_us = np.rint(np.arange(800) / FRAME_RATE * 1e6)
        if len(channels) == 1:
            assert len(rows) == 2400
            # every sample its own timestamp, spaced by the channel rate
            spacing = np.rint(np.arange(3) * 1e6 / 9523.81)
            expected = (frame_us[:, None] + spacing[None, :]).reshape(-1)
            np.testing.assert_array_equal(rows["timestamp"], expected)
            assert np.all(np.diff(rows["timestamp"].astype(np.int64)) > 0)
            np.testing.assert_array_equal(rows["counter"], np.repeat(np.arange(800) % 256, 3))
            np.testing.assert_array_equal(rows[axes[0]], frames(800, 0, 3)[2].reshape(-1))
        else:
            assert len(rows) == 800
            np.testing.assert_array_equal(rows["timestamp"], frame_us)
            np.testing.assert_array_equal(rows["counter"], np.arange(800) % 256)
            values = frames(800, 0, per_frame)[2]
            for index, axis in enumerate(axes):
                np.testing.assert_array_equal(rows[axis], values[:, index])

        attrs = table.attrs
        assert attrs["conversion"] == "true"
        assert attrs["adc_reference_voltage"] == "3.3"
        assert attrs["sample_rate"] == pytest.approx(9523.81)
        assert attrs["adc_prescaler"] == 2
        assert attrs["adc_acquisition_time"] == 8
        assert attrs["adc_oversampling_rate"] == 64
        assert attrs["Sample_Rate"].startswith("9523.81 Hz (Prescaler: 2")
        assert attrs["icoapi_version"]
        assert attrs["measurement_status"] == "stopped"
        assert attrs["rows"] == len(rows)
        assert attrs["dataloss"] == 0.0
        assert datetime.fromisoformat(attrs["Start_Time"]).microsecond == 6
        assert json.loads(attrs["channel_sensors"]) == {
            channel: {"channel_number": number, "sensor_id": row.sensor_id}
            for channel, number, row in zip(
                channels,
                [r.channel_number for r in sensor_rows(channels)],
                sensor_rows(channels),
                strict=True,
            )
        }

        sensors = h5.root.sensors
        assert sensors.title == "Sensor Data"
        stored = sensors.read()
        assert [c.decode() for c in stored["channel"]] == channels
        expected_rows = sensor_rows(channels)
        for row, sensor in zip(stored, expected_rows, strict=True):
            assert row["sensor_id"].decode() == sensor.sensor_id
            assert row["unit"].decode("utf-8") == sensor.unit
            assert row["phys_max"] == pytest.approx(sensor.phys_max)
            k, d = sensor.scaling_factor, sensor.offset
            assert row["scaling_factor"] == pytest.approx(k, rel=1e-6)
            assert row["offset"] == pytest.approx(d, rel=1e-5)


def test_utf8_unit_survives(make_writer: Factory, tmp_path: Path) -> None:
    make_writer(["second"]).close()
    with tables.open_file(tmp_path / "m.hdf5") as h5:
        assert h5.root.sensors[0]["unit"].decode("utf-8") == "°C"


@pytest.mark.parametrize("channels", [["first"], ["first", "second", "third"]])
def test_readable_by_icotronic_storage(
    make_writer: Factory, tmp_path: Path, channels: list[str]
) -> None:
    writer = make_writer(channels)
    counters, timestamps, values = frames(
        3175, rows_per_frame=FrameShape.of(channels).rows_per_frame
    )
    lost = np.ones(len(counters), bool)
    lost[100:110] = False  # ten frames lost
    writer.append(counters[lost], timestamps[lost], values[lost], lost=10)
    writer.close()

    with Storage(tmp_path / "m.hdf5") as data:
        assert data.axes == [{"first": "x", "second": "y", "third": "z"}[c] for c in channels]
        assert data.dataloss() == pytest.approx(10 / 3175)
        rows_per_frame = 3 if len(channels) == 1 else 1
        assert data.sampling_frequency() == pytest.approx(FRAME_RATE * rows_per_frame, rel=0.01)
        assert data.measurement_time() > 990_000
        assert data["conversion"] == "true"
    with tables.open_file(tmp_path / "m.hdf5") as h5:
        assert h5.root.acceleration.attrs["dataloss"] == pytest.approx(10 / 3175)


def test_dataloss_from_the_lost_counts_given(make_writer: Factory, tmp_path: Path) -> None:
    writer = make_writer(["first", "third"])
    writer.append(*frames(300, values_per_frame=2, rows_per_frame=1), lost=0)
    writer.append(*frames(700, 2300, values_per_frame=2, rows_per_frame=1), lost=2000)  # a long gap
    # The counts are current for the caller before the writer thread got there.
    assert (writer.frames, writer.lost_frames) == (1000, 2000)
    writer.close()
    assert writer.dataloss == pytest.approx(2000 / 3000)
    with tables.open_file(tmp_path / "m.hdf5") as h5:
        attrs = h5.root.acceleration.attrs
        assert attrs["dataloss"] == pytest.approx(2000 / 3000)
        assert (attrs["frames"], attrs["lost_frames"]) == (1000, 2000)
        assert h5.root.acceleration.nrows == 1000


def test_backpressure_raises_instead_of_blocking(make_writer: Factory, tmp_path: Path) -> None:
    writer = make_writer(["first"], queue_batches=1, put_timeout=0.1)
    # holding the lock, the writer thread cannot apply the attribute: its queue fills up
    with HDF5_LOCK, pytest.raises(StorageBackpressureError):
        writer.set_attributes(note="needs the lock")
        for _ in range(4):
            writer.append(*frames(10))
    writer.close()
    assert writer.error is None
    with tables.open_file(tmp_path / "m.hdf5") as h5:
        assert h5.root.acceleration.nrows > 0


def test_open_error_is_reported_and_close_works(tmp_path: Path) -> None:
    writer = MeasurementWriter(
        tmp_path / "missing" / "m.hdf5", ["first"], sensor_rows(["first"]), {}
    )
    writer.start()
    writer.close()
    assert writer.error is not None
    with pytest.raises(StorageError):
        writer.append(*frames(1))
    writer.close()  # idempotent


def test_existing_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "m.hdf5"
    path.write_bytes(b"precious")
    writer = MeasurementWriter(path, ["first"], [], {})
    writer.start()
    writer.close()
    assert isinstance(writer.error, FileExistsError)
    assert path.read_bytes() == b"precious"


def test_attribute_error_keeps_rows_and_reaches_the_status(
    make_writer: Factory, tmp_path: Path
) -> None:
    writer = make_writer(["first", "second"])
    writer.append(*frames(100, values_per_frame=2, rows_per_frame=1))
    # HDF5 refuses attributes above 64 KiB: the rows must go on regardless
    writer.set_attributes(huge="x" * 100_000)
    writer.append(*frames(100, 100, values_per_frame=2, rows_per_frame=1))
    writer.close({"measurement_status": "completed"})
    assert writer.error is None
    assert writer.problems and "attributes not written" in writer.problems[0]
    with tables.open_file(tmp_path / "m.hdf5") as h5:
        table = h5.root.acceleration
        assert table.nrows == 200
        np.testing.assert_array_equal(table.col("counter"), np.arange(200) % 256)
        status = table.attrs["measurement_status"]
        assert status.startswith("error: attributes not written: HDF5ExtError")
        assert len(status) <= 330


def test_writer_rejects_bad_batches(make_writer: Factory) -> None:
    writer = make_writer(["first", "second"])
    with pytest.raises(ValueError):
        writer.append([1, 2], [0.0, 0.1], np.zeros((2, 3)))  # two channels: 2 values
    with pytest.raises(ValueError):
        writer.append([1], [0.0, 0.1], np.zeros((1, 2)))
    with pytest.raises(ValueError):
        writer.write_metadata("during", {})  # type: ignore[arg-type]


def test_writer_rejects_foreign_sensor_channels(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        MeasurementWriter(tmp_path / "m.hdf5", ["first"], sensor_rows(["second"]), {})


def test_append_after_close_and_unstarted(tmp_path: Path, make_writer: Factory) -> None:
    unstarted = MeasurementWriter(tmp_path / "u.hdf5", ["first"], [], {})
    with pytest.raises(StorageError):
        unstarted.append(*frames(1))
    unstarted.close()
    writer = make_writer(["first"])
    writer.close()
    with pytest.raises(StorageError):
        writer.append(*frames(1))


async def test_aclose(make_writer: Factory, tmp_path: Path) -> None:
    writer = make_writer(["third"])
    writer.append(*frames(30))
    writer.set_attributes(note="queued after the data")
    await writer.aclose({"measurement_status": "completed"})
    with tables.open_file(tmp_path / "m.hdf5") as h5:
        assert h5.root.acceleration.nrows == 90
        assert h5.root.acceleration.attrs["note"] == "queued after the data"
    await asyncio.sleep(0)


def test_metadata_through_writer(make_writer: Factory, tmp_path: Path) -> None:
    writer = make_writer(["first"])
    meta = {
        "version": "1",
        "profile": "milling",
        "parameters": {"tool_picture": {"0": "aGk="}, "depth": {"value": 2, "unit": "mm"}},
    }
    writer.write_metadata("pre", meta)
    meta["parameters"]["depth"] = "changed later"  # the writer took a copy
    writer.close()
    with tables.open_file(tmp_path / "m.hdf5") as h5:
        stored = json.loads(h5.root.acceleration.attrs["pre_metadata"])
        assert stored["parameters"] == {"depth": {"value": 2, "unit": "mm"}}
        assert h5.root.pre__tool_picture.read().tolist() == [b"aGk="]


def test_read_channel(make_writer: Factory, tmp_path: Path) -> None:
    writer = make_writer(["first", "second", "third"])
    writer.append(*frames(1000, rows_per_frame=1))
    writer.close()
    timestamps, values = read_channel(tmp_path / "m.hdf5", "second")
    np.testing.assert_allclose(timestamps, np.arange(1000) / FRAME_RATE, atol=1e-6)
    np.testing.assert_array_equal(values, np.arange(1000) * 10 + 1)
    writer = make_writer(["first"], name="one.hdf5")
    writer.append(*frames(10))
    writer.close()
    with pytest.raises(KeyError):
        read_channel(tmp_path / "one.hdf5", "second")


def test_clean_close_removes_the_journal(make_writer: Factory, tmp_path: Path) -> None:
    writer = make_writer(["first"])
    writer.append(*frames(10))
    assert journal_path(tmp_path / "m.hdf5").exists()
    writer.close()
    assert not journal_path(tmp_path / "m.hdf5").exists()


def _peak_memory(writer: MeasurementWriter, seconds: int) -> int:
    counters, timestamps, values = frames(3175, rows_per_frame=1)  # one second of frames
    tracemalloc.start()
    try:
        for second in range(seconds):
            writer.append(counters, timestamps + second, values)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_measurement_length(make_writer: Factory) -> None:
    short = make_writer(["first", "second", "third"], name="short.hdf5", queue_batches=4)
    short_peak = _peak_memory(short, 30)
    long = make_writer(["first", "second", "third"], name="long.hdf5", queue_batches=4)
    long_peak = _peak_memory(long, 240)  # 762,000 rows, ~16 MB of table data
    long.close()
    assert long.rows == 240 * 3175
    # bounded by the queue (4 batches) and the rows collected between flushes
    assert long_peak < 6 * 1024 * 1024
    assert long_peak < 1.5 * short_peak + 1024 * 1024


CHILD = """
import sys
import time
from pathlib import Path
import numpy as np
from icoapi.hdf5.writer import MeasurementWriter

writer = MeasurementWriter(Path(sys.argv[1]), ["first", "second", "third"], [], {},
                           flush_interval=0.05)
writer.start()
reported, reports, start = 0, 0, 0
while True:
    index = np.arange(start, start + 200)
    writer.append(index % 256, index / 3174.6, np.ones((200, 3), np.float32))
    start += 200
    time.sleep(0.005)  # pace like a sensor (~40,000 rows/s), not a synchronisation
    if writer.flushed_rows != reported:
        reported = writer.flushed_rows
        reports += 1
        if reports >= 3:  # a few flushes in, still writing when killed
            print(reported, flush=True)
"""


def test_sigkill_leaves_readable_file_with_flushed_rows(tmp_path: Path) -> None:
    path = tmp_path / "killed.hdf5"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert child.stdout is not None
        flushed = int(child.stdout.readline())
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert flushed > 0
    with tables.open_file(path, mode="r") as h5:
        table = h5.root.acceleration
        assert table.nrows >= flushed
        rows = table.read()
        np.testing.assert_array_equal(rows["counter"], np.arange(len(rows)) % 256)


def test_start_time_is_the_one_given(make_writer: Factory, tmp_path: Path) -> None:
    writer = make_writer(["first"])
    writer.set_attributes(Start_Time="2025-01-02T03:04:05.678901")
    writer.append(*frames(10))
    writer.close()
    with tables.open_file(tmp_path / "m.hdf5") as h5:
        assert h5.root.acceleration.attrs["Start_Time"] == "2025-01-02T03:04:05.678901"
