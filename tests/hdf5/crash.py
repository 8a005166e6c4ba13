"""Kill a measurement-file writer process at random moments and check its file.

Shared by the crash test (a few kills) and ``bench/bench_crash.py`` (hundreds).
The child writes single-channel frames paced by the wall clock at ``rate``
frames per second, hands them to the writer every 0.1 s like the runner, and
prints ``<frames> <seconds of data>`` after each hand-over; its journal
checkpoints every ``checkpoint_interval`` s, so kills also land during and
between checkpoints. The parent kills it with SIGKILL, optionally destroys the
file's HDF5 index (superblock, root group: what a kill in the middle of an index
update can do at worst), recovers the file as the service does at startup and
compares.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tables
from icotronic.measurement.storage import Storage

from icoapi.hdf5.journal import journal_path
from icoapi.hdf5.recovery import recover_file

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FRAME_RATE = 38_400_000 / (3 * 21 * 64) / 3  # one channel, default ADC settings

CHILD = """
import sys, time
from pathlib import Path
import numpy as np
from icoapi.hdf5.writer import MeasurementWriter
from tests.hdf5.helpers import sensor_rows

path, rate, flush = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
writer = MeasurementWriter(path, ["first"], sensor_rows(["first"]),
                           {"channel_sample_rate": 3 * rate}, flush_interval=flush,
                           checkpoint_interval=float(sys.argv[4]))
writer.start()
start, sent = time.monotonic(), 0
print("ready", start, flush=True)
while True:
    time.sleep(0.1)
    due = int((time.monotonic() - start) * rate)
    index = np.arange(sent, due)
    values = np.repeat((index % 1000).astype(np.float32)[:, None], 3, axis=1)
    writer.append(index % 256, (index[:, None] + np.arange(3) / 3) / rate, values)
    sent = due
    print(sent, sent / rate, flush=True)
"""


@dataclass(frozen=True)
class KillResult:
    readable: bool
    recovered: bool  # a journal was there and was applied
    rows: int
    expected_rows: int  # rows handed over at least 1 s before the kill
    missing_seconds: float  # data produced (by the clock) before the kill, not in the file
    missing_handed_seconds: float  # data handed to the writer before the kill, not in the file
    problem: str | None = None
    rebuilt: bool = False  # the HDF5 file was unreadable and rebuilt from the journal
    damaged: bool = False  # its HDF5 index was destroyed after the kill


INDEX_BYTES = 4096  # the superblock and root group of a measurement file


def kill_once(
    folder: Path,
    rate: float,
    flush_interval: float,
    seed: int,
    name: str = "m.hdf5",
    *,
    checkpoint_interval: float = 0.5,
    damage_index: bool = False,
    longest: float = 3.0,
) -> KillResult:
    """Run one writer child, kill it at a random moment 0.3 s to ``longest`` s
    in, recover and check."""
    rng = random.Random(seed)
    path = folder / name
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(path),
            str(rate),
            str(flush_interval),
            str(checkpoint_interval),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    progress: list[tuple[float, int, float]] = []  # (received, frames, seconds)
    ready = threading.Event()
    started: list[float] = []

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("ready"):
                started.append(float(line.split()[1]))  # CLOCK_MONOTONIC is system-wide
                ready.set()
                continue
            parts = line.split()
            if len(parts) != 2 or not line.endswith("\n"):
                continue  # cut off by the kill
            progress.append((time.monotonic(), int(parts[0]), float(parts[1])))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("writer child did not start")
        deadline = time.monotonic() + rng.uniform(0.3, longest)
        while time.monotonic() < deadline:
            time.sleep(0.01)
        killed_at = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
        reader.join(30)
    handed = [entry for entry in progress if entry[0] <= killed_at]
    early = [entry for entry in handed if entry[0] <= killed_at - 1.0]
    expected_rows = 3 * early[-1][1] if early else 0
    last_seconds = handed[-1][2] if handed else 0.0
    produced_seconds = killed_at - started[0]

    journal = journal_path(path)
    if damage_index:
        with open(path, "r+b") as file:
            file.write(b"\0" * INDEX_BYTES)
    recovered = journal.exists()
    rebuilt = False
    if recovered:
        result = recover_file(journal)
        rebuilt = result.rebuilt
        if result.error is not None:
            return KillResult(
                False, True, 0, expected_rows, produced_seconds, last_seconds, result.error
            )
    try:
        with tables.open_file(str(path), "r") as h5:
            table = h5.root.acceleration
            rows = int(table.nrows)
            counters = table.col("counter")
            timestamps = table.col("timestamp")
            status = table.attrs["measurement_status"] if recovered else "interrupted"
        with Storage(path) as storage:
            storage.dataloss()
    except Exception as error:
        return KillResult(
            False, recovered, 0, expected_rows, produced_seconds, last_seconds, repr(error)
        )
    problem = None
    frames = np.arange(rows // 3)
    if rows % 3 or not np.array_equal(counters, np.repeat(frames % 256, 3)):
        problem = "rows are not the frames in order"
    elif status != "interrupted":
        problem = f"status {status!r}"
    # compare frame ends: the file's last row is the last sample of its last frame
    last = (rows // 3) / rate
    if rows and abs(float(timestamps[-1]) / 1e6 - (last - 1 / rate)) > 1e-3:
        problem = "timestamps do not match the frames"
    return KillResult(
        True,
        recovered,
        rows,
        expected_rows,
        max(0.0, produced_seconds - last),
        max(0.0, last_seconds - last),
        problem,
        rebuilt,
        damage_index,
    )
