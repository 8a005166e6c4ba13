"""The upload queue's database (real SQLite): pruning of finished jobs and
what an interrupted attempt leaves for its retry."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from icoapi.dataspace.queue import KEEP_DAYS, KEEP_FINISHED_JOBS, JobState, UploadQueue


def test_finished_jobs_are_pruned_failed_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "uploads.sqlite3"
    queue = UploadQueue(path)
    now = time.time()
    old = now - (KEEP_DAYS + 1) * 86400
    with sqlite3.connect(path) as db:
        rows = [(f"done-{i}.hdf5", "done", now, now) for i in range(KEEP_FINISHED_JOBS + 5)]
        rows += [("old-cancelled.hdf5", "cancelled", old, old)]
        rows += [("old-failed.hdf5", "failed", old, old)]
        rows += [(f"done-recent-{i}.hdf5", "done", now, now) for i in range(3)]
        db.executemany("INSERT INTO jobs (name, state, created, updated) VALUES (?, ?, ?, ?)", rows)
    queue.prune()
    names = [job.name for job in queue.jobs()]
    counts = queue.count_by_state()
    assert counts[JobState.DONE] == KEEP_FINISHED_JOBS
    assert "done-0.hdf5" not in names  # the oldest beyond the newest 1000
    assert "done-recent-2.hdf5" in names
    assert "old-cancelled.hdf5" not in names  # older than KEEP_DAYS
    assert "old-failed.hdf5" in names  # failed: kept until retried or cancelled
    queue.close()


def test_an_upload_of_a_failed_file_runs_its_job_again(tmp_path: Path) -> None:
    queue = UploadQueue(tmp_path / "uploads.sqlite3")
    job = queue.enqueue("a.hdf5")
    assert queue.start(job.id, 10)
    queue.set_remote_id(job.id, 42)
    queue.fail(job.id, "refused", 502)
    again = queue.enqueue("a.hdf5")
    assert (again.id, again.state, again.attempts, again.remote_id) == (
        job.id,
        JobState.QUEUED,
        0,
        42,
    )
    queue.close()


def test_an_interrupted_attempt_is_queued_again_with_its_multipart_upload(
    tmp_path: Path,
) -> None:
    path = tmp_path / "uploads.sqlite3"
    queue = UploadQueue(path)
    job = queue.enqueue("a.hdf5")
    assert queue.start(job.id, 10)
    queue.set_multipart(job.id, "upload-1")
    queue.close()  # the service was killed

    reopened = UploadQueue(path)
    [open_job] = reopened.open_multipart()
    assert (open_job.id, open_job.state, open_job.multipart_id) == (
        job.id,
        JobState.QUEUED,
        "upload-1",
    )
    reopened.close()
