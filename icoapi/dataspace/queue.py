"""The persistent upload queue: an SQLite database in the data folder.

Each upload is a job with a state, attempts, the last error and the bytes sent;
the database also remembers what was uploaded (size, modification time and
checksum of the local file), so the status of unchanged files needs no hashing.

Job states are :class:`JobState`. A job that was ``uploading`` when the service
stopped is queued again at the next start; what its attempt left in the
dataspace (a Trident object, an S3 multipart upload) is remembered with it, so
the retry reuses or cleans it up. Finished jobs are pruned: done and cancelled
ones after :data:`KEEP_DAYS` days or beyond the newest :data:`KEEP_FINISHED_JOBS`;
failed ones stay until they are retried or cancelled.

All methods are blocking and thread-safe (one connection, one lock); the
service calls them from worker threads."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"  # waiting for its turn, possibly until next_attempt
    UPLOADING = "uploading"
    DONE = "done"
    FAILED = "failed"  # given up; can be retried
    CANCELLED = "cancelled"


FINISHED_STATES = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
# Done and cancelled jobs kept for GET /cloud/queue.
KEEP_FINISHED_JOBS = 1000
KEEP_DAYS = 30

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    remote_id INTEGER,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    bytes_sent INTEGER NOT NULL DEFAULT 0,
    size INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    next_attempt REAL NOT NULL DEFAULT 0,
    error_status INTEGER,
    multipart_id TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, next_attempt);
CREATE TABLE IF NOT EXISTS uploaded (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    etag TEXT NOT NULL,
    uploaded REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS checksums (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    part_size INTEGER NOT NULL,
    etag TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Job:
    id: int
    name: str
    remote_id: int | None
    state: JobState
    attempts: int
    last_error: str | None
    bytes_sent: int
    size: int | None
    created: float
    updated: float
    next_attempt: float
    error_status: int | None = None  # the HTTP status of last_error
    multipart_id: str | None = None  # an S3 multipart upload an attempt left open

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        values = {key: row[key] for key in row.keys()}  # noqa: SIM118
        values["state"] = JobState(values["state"])
        return cls(**values)


@dataclass(frozen=True)
class UploadRecord:
    """What this service uploaded for a file, and the file's state then."""

    size: int
    mtime_ns: int
    etag: str
    uploaded: float


class UploadQueue:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            for column, kind in (("error_status", "INTEGER"), ("multipart_id", "TEXT")):
                if column not in columns:  # a database of an older version
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
            # Interrupted by a stop or crash: start over.
            self._db.execute(
                "UPDATE jobs SET state='queued', bytes_sent=0, next_attempt=0 "
                "WHERE state='uploading'"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _execute(self, sql: str, *args: Any) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # -- jobs -------------------------------------------------------------------------

    def enqueue(self, name: str, remote_id: int | None = None) -> Job:
        """A job for ``name``. An active job for the same file is reused, and so
        is a failed one (it runs again, with what its attempts left remotely)."""
        now = time.time()
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE name=? AND state IN ('queued','uploading','failed') "
                "ORDER BY id DESC LIMIT 1",
                (name,),
            ).fetchone()
            if row is not None:
                if row["state"] in ("queued", "failed"):
                    self._db.execute(
                        "UPDATE jobs SET state='queued', next_attempt=0, "
                        "attempts=CASE WHEN state='failed' THEN 0 ELSE attempts END, "
                        "remote_id=COALESCE(?, remote_id), updated=? WHERE id=?",
                        (remote_id, now, row["id"]),
                    )
                    row = self._db.execute("SELECT * FROM jobs WHERE id=?", (row["id"],)).fetchone()
                return Job.from_row(row)
            cursor = self._db.execute(
                "INSERT INTO jobs (name, remote_id, state, created, updated) "
                "VALUES (?, ?, 'queued', ?, ?)",
                (name, remote_id, now, now),
            )
            self._prune(now)
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (cursor.lastrowid,)).fetchone()
            return Job.from_row(row)

    def _prune(self, now: float) -> None:
        """Delete old done and cancelled jobs (caller holds the lock)."""
        self._db.execute(
            "DELETE FROM jobs WHERE state IN ('done','cancelled') AND (updated < ? OR id NOT IN "
            "(SELECT id FROM jobs WHERE state IN ('done','cancelled') ORDER BY id DESC LIMIT ?))",
            (now - KEEP_DAYS * 86400, KEEP_FINISHED_JOBS),
        )

    def prune(self) -> None:
        with self._lock:
            self._prune(time.time())

    def count_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state (for metrics)."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        counts = dict.fromkeys(JobState, 0)
        counts.update({JobState(row[0]): int(row[1]) for row in rows})
        return counts

    def get(self, job_id: int) -> Job | None:
        row = self._one("SELECT * FROM jobs WHERE id=?", job_id)
        return None if row is None else Job.from_row(row)

    def jobs(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY id DESC").fetchall()
        return [Job.from_row(row) for row in rows]

    def count_queued(self) -> int:
        """Jobs waiting for their turn."""
        row = self._one("SELECT COUNT(*) FROM jobs WHERE state='queued'")
        return int(row[0]) if row is not None else 0

    def latest_by_name(self) -> dict[str, Job]:
        """The newest job of each file."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE id IN (SELECT MAX(id) FROM jobs GROUP BY name)"
            ).fetchall()
        return {row["name"]: Job.from_row(row) for row in rows}

    def next_due(self, now: float) -> tuple[Job | None, float | None]:
        """The next job to run now, or else when the next one is due."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE state='queued' ORDER BY next_attempt, id LIMIT 1"
            ).fetchone()
        if row is None:
            return None, None
        if row["next_attempt"] <= now:
            return Job.from_row(row), None
        return None, float(row["next_attempt"])

    def start(self, job_id: int, size: int) -> bool:
        return (
            self._execute(
                "UPDATE jobs SET state='uploading', attempts=attempts+1, bytes_sent=0, size=?, "
                "updated=? WHERE id=? AND state='queued'",
                size,
                time.time(),
                job_id,
            )
            == 1
        )

    def progress(self, job_id: int, sent: int) -> None:
        self._execute(
            "UPDATE jobs SET bytes_sent=?, updated=? WHERE id=? AND state='uploading'",
            sent,
            time.time(),
            job_id,
        )

    def set_remote_id(self, job_id: int, remote_id: int) -> None:
        """The object the job's attempt created: retries send to it."""
        self._execute("UPDATE jobs SET remote_id=? WHERE id=?", remote_id, job_id)

    def set_multipart(self, job_id: int, upload_id: str | None) -> None:
        self._execute("UPDATE jobs SET multipart_id=? WHERE id=?", upload_id, job_id)

    def open_multipart(self) -> list[Job]:
        """Jobs whose attempt left a multipart upload open (the service was killed)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE multipart_id IS NOT NULL AND state != 'uploading'"
            ).fetchall()
        return [Job.from_row(row) for row in rows]

    def finish(self, job_id: int, remote_id: int | None) -> None:
        self._execute(
            "UPDATE jobs SET state='done', last_error=NULL, error_status=NULL, "
            "bytes_sent=COALESCE(size, 0), multipart_id=NULL, "
            "remote_id=COALESCE(?, remote_id), updated=? WHERE id=?",
            remote_id,
            time.time(),
            job_id,
        )

    def retry_later(self, job_id: int, error: str, status: int, delay: float) -> None:
        now = time.time()
        self._execute(
            "UPDATE jobs SET state='queued', last_error=?, error_status=?, next_attempt=?, "
            "updated=? WHERE id=? AND state='uploading'",
            error,
            status,
            now + delay,
            now,
            job_id,
        )

    def fail(self, job_id: int, error: str, status: int) -> None:
        self._execute(
            "UPDATE jobs SET state='failed', last_error=?, error_status=?, updated=? WHERE id=?",
            error,
            status,
            time.time(),
            job_id,
        )

    def retry(self, job_id: int) -> bool:
        """A failed, cancelled or waiting job runs again now (attempts restart)."""
        return (
            self._execute(
                "UPDATE jobs SET state='queued', attempts=0, next_attempt=0, updated=? "
                "WHERE id=? AND state IN ('failed','cancelled','queued')",
                time.time(),
                job_id,
            )
            == 1
        )

    def cancel(self, job_id: int) -> bool:
        """Cancel a job that is not finished (an upload in progress stops at its
        next block)."""
        return (
            self._execute(
                "UPDATE jobs SET state='cancelled', updated=? "
                "WHERE id=? AND state IN ('queued','uploading')",
                time.time(),
                job_id,
            )
            == 1
        )

    def wake_all(self) -> None:
        """Waiting jobs become due now (the dataspace is back or was reconfigured)."""
        self._execute("UPDATE jobs SET next_attempt=0 WHERE state='queued'")

    # -- what was uploaded, and checksums ------------------------------------------------

    def record_upload(self, name: str, size: int, mtime_ns: int, etag: str) -> None:
        self._execute(
            "INSERT OR REPLACE INTO uploaded (name, size, mtime_ns, etag, uploaded) "
            "VALUES (?, ?, ?, ?, ?)",
            name,
            size,
            mtime_ns,
            etag,
            time.time(),
        )

    def uploads(self) -> dict[str, UploadRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM uploaded").fetchall()
        return {
            row["name"]: UploadRecord(row["size"], row["mtime_ns"], row["etag"], row["uploaded"])
            for row in rows
        }

    def cached_etag(self, name: str, size: int, mtime_ns: int, part_size: int) -> str | None:
        row = self._one(
            "SELECT etag FROM checksums WHERE name=? AND size=? AND mtime_ns=? AND part_size=?",
            name,
            size,
            mtime_ns,
            part_size,
        )
        return None if row is None else str(row["etag"])

    def store_etag(self, name: str, size: int, mtime_ns: int, part_size: int, etag: str) -> None:
        self._execute(
            "INSERT OR REPLACE INTO checksums (name, size, mtime_ns, part_size, etag) "
            "VALUES (?, ?, ?, ?, ?)",
            name,
            size,
            mtime_ns,
            part_size,
            etag,
        )
