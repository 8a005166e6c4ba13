"""Limits of the dataspace service (tests shorten the delays)."""

from __future__ import annotations

from dataclasses import dataclass

from icoapi.dataspace.connectors.base import CONNECT_TIMEOUT, PART_SIZE, READ_TIMEOUT


@dataclass(frozen=True)
class DataspaceOptions:
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    part_size: int = PART_SIZE
    backoff_initial: float = 2.0
    backoff_max: float = 300.0
    # Attempts for a checksum mismatch before a job fails; outages are retried
    # without limit, refusals (4xx) not at all.
    max_attempts: int = 5
    # A file that keeps changing during its upload is given up after this many tries.
    max_changed_attempts: int = 10
    # The uploader refreshes the listing this often when idle.
    listing_ttl: float = 60.0
    # A file listing refreshes a listing older than this, waiting at most
    # listing_wait for it (else it shows what is known).
    listing_fresh: float = 5.0
    listing_wait: float = 2.0
    # Unfinished multipart uploads under the prefix older than this are aborted.
    stale_multipart_age: float = 86400.0
    progress_interval: float = 0.25
    progress_db_interval: float = 1.0
