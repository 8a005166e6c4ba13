"""Connection limits in front of the application: a deadline for request headers
and a ceiling on open connections.

uvicorn alone keeps a connection that never finishes its request headers open
forever (its keep-alive timeout only runs between requests, and any byte stops
it), so enough half-open connections use up the process's file descriptors and
nothing is accepted any more, ``/health`` included. uvicorn's
``limit_concurrency`` does not help: it answers 503 once headers are complete,
which a half-open connection never is.

So the HTTP protocol (uvicorn's httptools one) is extended:

* **Header deadline.** A new connection, and a kept-alive one once the next
  request's first byte arrives, must complete the request headers within
  ``header_timeout`` seconds, or it is closed.
* **Connection ceiling.** When a new connection makes more than
  ``max_connections`` open (HTTP and WebSocket), the connection that has waited
  longest for request headers (half-open, or idle between requests) is closed to
  make room; only if every open connection is busy with a request or a
  WebSocket is the new one closed instead. So a flood of half-open connections
  can never crowd out a real request.

Both limits are logged when they are hit: once at the first hit, then as one
summary per :data:`LOG_INTERVAL` while they keep being hit (never one line per
connection).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

# Seconds between two log lines about limits that keep being hit.
LOG_INTERVAL = 60.0
# File descriptors kept for everything but client connections (log and
# measurement files, the CAN link, the upload database, threads): a quarter of
# the process's limit, at least this many.
MIN_RESERVED_DESCRIPTORS = 64


def descriptor_limit() -> int | None:
    """The process's soft limit of open files (``None``: unlimited or unknown)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


def connection_ceiling(configured: int, descriptors: int | None) -> int:
    """``configured``, lowered so that connections leave descriptors for the
    rest of the service (at least 1)."""
    if descriptors is None:
        return configured
    reserved = max(MIN_RESERVED_DESCRIPTORS, descriptors // 4)
    return max(1, min(configured, descriptors - reserved))


class LimitLog:
    """Logs limit hits: the first at once, later ones as one summary per interval."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self.interval = interval
        self._counts: Counter[str] = Counter()
        self._last_logged: float | None = None
        self._pending: asyncio.TimerHandle | None = None
        self.lines = 0  # log lines written (for tests)

    @property
    def next_summary_at(self) -> float | None:
        """Loop time of the pending summary (``None``: nothing waits)."""
        return None if self._pending is None else self._pending.when()

    def note(self, loop: asyncio.AbstractEventLoop, reason: str) -> None:
        self._counts[reason] += 1
        now = loop.time()
        if self._last_logged is None or now - self._last_logged >= self.interval:
            self._write(now)
        elif self._pending is None:
            self._pending = loop.call_at(self._last_logged + self.interval, self._write_later, loop)

    def _write_later(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pending = None
        if self._counts:
            self._write(loop.time())

    def _write(self, now: float) -> None:
        since = "" if self._last_logged is None else f" in the last {now - self._last_logged:.0f} s"
        parts = ", ".join(f"{count} {reason}" for reason, count in sorted(self._counts.items()))
        logger.warning("Connection limits hit%s: closed %s", since, parts)
        self._counts.clear()
        self._last_logged = now
        self.lines += 1


class ConnectionWatch:
    """The limits of one server, shared by its connections."""

    def __init__(
        self, max_connections: int, header_timeout: float, log: LimitLog | None = None
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.log = log or LimitLog()
        # Connections waiting for request headers, longest waiting first, with
        # their deadline (None: idle between requests, uvicorn's keep-alive
        # timeout covers the silence).
        self._waiting: dict[GuardedProtocol, asyncio.TimerHandle | None] = {}
        # Closed by a limit, not yet gone (still counted by uvicorn).
        self._closing: set[GuardedProtocol] = set()

    def opened(self, connection: GuardedProtocol, open_connections: int) -> bool:
        """A new connection (already counted in ``open_connections``). False:
        no room, the new connection must be closed."""
        if open_connections - len(self._closing) > self.max_connections:
            victim = next((other for other in self._waiting if other is not connection), None)
            if victim is None:
                self.log.note(connection.loop, "new connections (all connections busy)")
                return False
            self.close(victim, f"waiting connections (over {self.max_connections} open)")
        self.await_headers(connection, deadline=True)
        return True

    def await_headers(self, connection: GuardedProtocol, deadline: bool) -> None:
        """The connection waits for request headers (again), with or without a deadline."""
        self.headers_done(connection)
        handle = (
            connection.loop.call_later(self.header_timeout, self._expired, connection)
            if deadline
            else None
        )
        self._waiting[connection] = handle

    def request_begun(self, connection: GuardedProtocol) -> None:
        """The first byte of a request on a kept-alive connection: start its deadline."""
        if connection in self._waiting and self._waiting[connection] is None:
            self._waiting[connection] = connection.loop.call_later(
                self.header_timeout, self._expired, connection
            )

    def headers_done(self, connection: GuardedProtocol) -> None:
        handle = self._waiting.pop(connection, None)
        if handle is not None:
            handle.cancel()

    def gone(self, connection: GuardedProtocol) -> None:
        self.headers_done(connection)
        self._closing.discard(connection)

    def close(self, connection: GuardedProtocol, reason: str) -> None:
        self.headers_done(connection)
        if not connection.transport.is_closing():
            self._closing.add(connection)
            connection.transport.close()
        self.log.note(connection.loop, reason)

    def _expired(self, connection: GuardedProtocol) -> None:
        self._waiting.pop(connection, None)
        self.close(
            connection, f"connections without request headers after {self.header_timeout:g} s"
        )


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol under a :class:`ConnectionWatch` (set by
    :func:`guarded_http_protocol` on a subclass per server)."""

    watch: ConnectionWatch

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.watch.opened(self, len(self.connections)):
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.watch.request_begun(self)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self.watch.headers_done(self)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self.watch.await_headers(self, deadline=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.watch.gone(self)
        super().connection_lost(exc)


def guarded_http_protocol(watch: ConnectionWatch) -> type[GuardedProtocol]:
    """An HTTP protocol class for uvicorn's ``http=`` option, bound to ``watch``."""
    attributes: dict[str, Any] = {"watch": watch}
    return type("GuardedHttpProtocol", (GuardedProtocol,), attributes)
