"""The wait of a finished measurement for its post-measurement metadata.

A run started with ``wait_for_post_meta`` closes its file and then waits, at most
``POST_META_TIMEOUT`` seconds, for ``POST /measurement/post_meta``. While it
waits the service is busy (no new measurement), so the wait is part of the
status every client sees, and it ends in one of three ways: the metadata
arrives, a client finishes without it (``POST /measurement/stop``, or shutdown),
or the time runs out. Metadata that arrives before the wait begins (while the
file is still being closed) is kept and ends the wait at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from icoapi.measurement.schemas import Metadata, PendingPostMeta

logger = logging.getLogger(__name__)


class PostMetaOutcome(StrEnum):
    RECEIVED = "received"
    FINISHED_WITHOUT = "finished without post-measurement metadata"
    TIMED_OUT = "timed out"


class PostMetaWait:
    """One measurement's wait for its post-measurement metadata."""

    def __init__(self, name: str, file: str, timeout: float) -> None:
        self.name = name
        self.file = file
        self.timeout = timeout
        self.metadata: Metadata | None = None
        self.outcome: PostMetaOutcome | None = None
        self._decided = asyncio.Event()
        self._since: datetime | None = None

    @property
    def pending(self) -> bool:
        """The wait has begun and has not ended."""
        return self._since is not None and self.outcome is None

    def describe(self) -> PendingPostMeta | None:
        """What clients are told while the wait is pending (``None`` otherwise)."""
        if not self.pending:
            return None
        assert self._since is not None
        return PendingPostMeta(
            name=self.name,
            file=self.file,
            since=self._since.isoformat(),
            until=(self._since + timedelta(seconds=self.timeout)).isoformat(),
        )

    # -- what clients do -------------------------------------------------------------

    def provide(self, metadata: Metadata) -> bool:
        """Deliver the metadata. False if the wait is over already."""
        if self.outcome is not None or self._decided.is_set():
            return False
        self.metadata = metadata
        self._decided.set()
        return True

    def finish_without(self) -> bool:
        """End the wait without metadata (the client's "Finish Without
        Post-Metadata"). False if the wait is over already."""
        if self.outcome is not None or self._decided.is_set():
            return False
        self._decided.set()
        return True

    # -- what the run does -----------------------------------------------------------

    def begin(self) -> None:
        """Start the clock: from now on the wait is pending."""
        if self._since is None:
            self._since = datetime.now(UTC)

    async def wait(self) -> Metadata | None:
        """Wait (beginning if not yet begun) and return the metadata, or ``None``
        if the wait ended without it (see :attr:`outcome`)."""
        self.begin()
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                await self._decided.wait()
        except TimeoutError:
            self.outcome = PostMetaOutcome.TIMED_OUT
            logger.warning(
                "No post-measurement metadata for %s within %g s; file %s finished without it",
                self.name,
                self.timeout,
                self.file,
            )
            return None
        if self.metadata is None:
            self.outcome = PostMetaOutcome.FINISHED_WITHOUT
            logger.info(
                "Measurement %s finished without post-measurement metadata after %.1f s",
                self.name,
                time.monotonic() - started,
            )
            return None
        self.outcome = PostMetaOutcome.RECEIVED
        logger.debug("Post-measurement metadata for %s received", self.name)
        return self.metadata
