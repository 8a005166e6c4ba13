"""Crash safety: the journal, startup recovery, and random SIGKILLs of a writer."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tables
from icotronic.measurement.storage import Storage

from icoapi.hdf5.journal import RecordKind, journal_path, read_journal
from icoapi.hdf5.metadata import read_metadata
from icoapi.hdf5.recovery import recover_interrupted
from icoapi.hdf5.validation import check_file
from tests.files.hostile import payload
from tests.hdf5.crash import DEFAULT_FRAME_RATE, ROOT, kill_once

NOTE = 200_000  # characters: metadata far beyond an attribute's 64 KiB
BIG = {"version": "1", "profile": "p", "parameters": {"note": "x" * NOTE}}


CHILD = """
import json, sys, time
from pathlib import Path
import numpy as np
from icoapi.hdf5.writer import MeasurementWriter
from tests.hdf5.helpers import sensor_rows

path, frames, flush = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
checkpoint = float(sys.argv[6])
writer = MeasurementWriter(path, ["first", "second", "third"], sensor_rows(["first"]), {},
                           flush_interval=flush, checkpoint_interval=checkpoint)
writer.start()
index = np.arange(frames)
writer.set_attributes(Start_Time="2026-01-01T00:00:00")
writer.write_metadata("pre", {"version": "1", "profile": "p",
                              "parameters": {"note": "x" * int(sys.argv[4])}})
for part in np.array_split(index, int(sys.argv[5])):  # one journal record each
    writer.append(part % 256, part / 1000, np.ones((len(part), 3)), lost=5)
while writer.rows < frames:  # the rows are in the journal once the thread took them
    time.sleep(0.01)
while checkpoint < 1 and writer.checkpoints < 1:
    time.sleep(0.01)
print("journaled", flush=True)
time.sleep(600)
"""


def killed_writer(
    path: Path, frames: int, flush_interval: float, batches: int = 1, checkpoint: float = 5.0
) -> None:
    """Run a writer in a child process that journals ``frames`` frames in
    ``batches`` batches (5 frames lost before each) and metadata, then kill it
    with SIGKILL."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(path),
            str(frames),
            str(flush_interval),
            str(NOTE),
            str(batches),
            str(checkpoint),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "journaled"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)


def test_unreadable_file_is_rebuilt_from_its_journal(tmp_path: Path) -> None:
    path = tmp_path / "m.hdf5"
    killed_writer(path, 500, flush_interval=0.05)
    path.write_bytes(b"\0" * 4096)  # what a kill during a flush can leave
    results = recover_interrupted(tmp_path)
    assert [(r.path, r.rows, r.rebuilt, r.error) for r in results] == [(path, 500, True, None)]
    assert not journal_path(path).exists()
    with tables.open_file(str(path)) as h5:
        table = h5.root.acceleration
        assert table.nrows == 500
        np.testing.assert_array_equal(table.col("counter"), np.arange(500) % 256)
        assert table.attrs["measurement_status"] == "interrupted"
        assert table.attrs["rows"] == 500
        assert table.attrs["dataloss"] == pytest.approx(5 / 505)
        assert (table.attrs["frames"], table.attrs["lost_frames"]) == (500, 5)
        assert table.attrs["Start_Time"] == "2026-01-01T00:00:00"
        assert json.loads(read_metadata(h5, "pre") or "") == BIG
        assert h5.root.sensors.nrows == 1
    with Storage(path) as storage:
        assert storage.dataloss() == pytest.approx(0)


def test_hostile_file_beside_a_journal_is_rebuilt_without_being_opened(tmp_path: Path) -> None:
    # A file put beside a journal (e.g. copied into the folder) is checked before
    # PyTables opens it for recovery: its pickled root VERSION never runs, and the
    # file is rebuilt from the journal alone.
    path = tmp_path / "m.hdf5"
    marker = tmp_path / "PWNED"
    killed_writer(path, 500, flush_interval=0.05)
    with h5py.File(path, "r+") as h5:
        h5.attrs["VERSION"] = payload(marker)
    results = recover_interrupted(tmp_path)
    assert [(r.rows, r.rebuilt, r.error) for r in results] == [(500, True, None)]
    assert not marker.exists()
    check_file(path)  # the rebuilt file is one of ours
    with tables.open_file(str(path)) as h5:
        assert h5.root.acceleration.nrows == 500
    assert not marker.exists()


def test_readable_file_is_completed_and_marked(tmp_path: Path) -> None:
    path = tmp_path / "m.hdf5"
    killed_writer(path, 300, flush_interval=600)
    # the HDF5 file has not been flushed since its creation; the journal has all rows
    with tables.open_file(str(path)) as h5:
        assert h5.root.acceleration.nrows == 0
    results = recover_interrupted(tmp_path)
    assert [(r.rows, r.rebuilt) for r in results] == [(300, False)]
    with tables.open_file(str(path)) as h5:
        assert h5.root.acceleration.nrows == 300
        assert h5.root.acceleration.attrs["measurement_status"] == "interrupted"


def test_damaged_journal_tail_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "m.hdf5"
    killed_writer(path, 100, flush_interval=0.05)
    with open(journal_path(path), "ab") as journal:
        journal.write(b"ICOJ\x02\xff\xff\x00\x00garbage")  # a record cut off by the kill
    path.unlink()
    [result] = recover_interrupted(tmp_path)
    assert (result.rows, result.rebuilt, result.error) == (100, True, None)


@pytest.mark.parametrize(("flush_interval", "seed"), [(0.05, 1), (0.05, 2), (1.0, 3), (1.0, 4)])
def test_random_sigkill_at_ten_times_the_rate(
    tmp_path: Path, flush_interval: float, seed: int
) -> None:
    """Killed at a random moment (with frequent flushes: often during one), the
    file is readable after recovery and holds every row up to 1 s before the kill."""
    result = kill_once(tmp_path, 10 * DEFAULT_FRAME_RATE, flush_interval, seed)
    assert result.readable, result.problem
    assert result.recovered
    assert result.problem is None
    assert result.rows >= result.expected_rows
    assert result.missing_seconds < 1.0


def test_damaged_journal_record_counts_as_lost(tmp_path: Path) -> None:
    """A rows record damaged on disk in the middle of the journal: the records
    after it are still recovered, and its frames count as lost."""
    path = tmp_path / "m.hdf5"
    killed_writer(path, 300, flush_interval=600, batches=3)  # the file has no rows yet
    journal = journal_path(path)
    data = bytearray(journal.read_bytes())
    records = [offset for offset in range(len(data)) if data[offset : offset + 5] == b"ICOJ\x02"]
    assert len(records) == 3
    data[records[1] + 20] ^= 0xFF  # a flipped byte in the second batch's rows
    journal.write_bytes(bytes(data))
    [result] = recover_interrupted(tmp_path)
    assert (result.rows, result.error, result.damaged_records) == (200, None, 1)
    with tables.open_file(str(path)) as h5:
        table = h5.root.acceleration
        counters = table.col("counter")
        np.testing.assert_array_equal(counters, np.r_[np.arange(100), np.arange(200, 300)] % 256)
        # 5 lost before each of the two readable batches, and the 100 frames of the damaged one
        assert (table.attrs["frames"], table.attrs["lost_frames"]) == (200, 110)
        assert table.attrs["dataloss"] == pytest.approx(110 / 310)
        assert table.attrs["damaged_journal_records"] == 1
        assert table.attrs["measurement_status"] == "interrupted"


@pytest.mark.parametrize(("seed", "damage_index"), [(5, False), (6, True), (7, True)])
def test_sigkill_across_checkpoints(tmp_path: Path, seed: int, damage_index: bool) -> None:
    """Killed after several journal checkpoints (every 0.3 s), also with the
    file's HDF5 index destroyed afterwards (the worst a kill during an index update
    can do): the file is rebuilt from its verified chunks and the journal, exact."""
    result = kill_once(
        tmp_path,
        10 * DEFAULT_FRAME_RATE,
        1.0,
        seed,
        checkpoint_interval=0.3,
        damage_index=damage_index,
        longest=4.0,
    )
    assert result.readable, result.problem
    assert result.problem is None
    assert result.rebuilt == damage_index
    assert result.rows >= result.expected_rows
    assert result.missing_seconds < 1.0


def test_metadata_survives_a_checkpoint_and_a_destroyed_index(tmp_path: Path) -> None:
    """After a checkpoint the journal no longer repeats the metadata; its side
    file keeps it for a rebuild."""
    path = tmp_path / "m.hdf5"
    killed_writer(path, 500, flush_interval=0.05, checkpoint=0.01)
    kinds = [kind for kind, _ in read_journal(journal_path(path))]
    assert RecordKind.METADATA not in kinds  # the journal was restarted
    path.write_bytes(b"\0" * 4096)
    [result] = recover_interrupted(tmp_path)
    assert (result.rows, result.rebuilt, result.error) == (500, True, None)
    assert not list(tmp_path.glob(".*"))  # journal and side file are gone
    with tables.open_file(str(path)) as h5:
        assert json.loads(read_metadata(h5, "pre") or "") == BIG
        assert h5.root.acceleration.attrs["Start_Time"] == "2026-01-01T00:00:00"
        assert h5.root.acceleration.attrs["lost_frames"] == 5
