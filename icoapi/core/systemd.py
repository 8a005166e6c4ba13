"""The systemd notify protocol: readiness, watchdog, stopping and status lines.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
namespace) to a ``Type=notify`` service; each message is one datagram of
``KEY=value`` lines. Without the variable nothing is sent. With
``WatchdogSec=`` systemd also passes ``WATCHDOG_USEC``: the service then sends
``WATCHDOG=1`` every half of that interval from its event loop, so a loop that
is blocked stops the pings and systemd restarts the service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping

from icoapi.core.events import Event, EventBus

logger = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends notify messages to systemd; does nothing without ``NOTIFY_SOCKET``."""

    def __init__(self, address: str | None) -> None:
        self.address: str | None = None
        if address and address[0] in "/@":
            # "@name" is the abstract namespace: a leading NUL byte on the wire.
            self.address = "\0" + address[1:] if address[0] == "@" else address
        elif address:
            logger.warning("Ignoring NOTIFY_SOCKET %r: not a path or @name", address)
        self._socket: socket.socket | None = None
        self.is_stopping = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        environ = os.environ if environ is None else environ
        return cls(environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` assignments in one datagram; False if not sent.

        Never blocks and never raises: systemd reads these at once, and a
        missing manager must not disturb the service."""
        if self.address is None:
            return False
        message = "\n".join(assignments).encode("utf-8", errors="replace")
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto(message, self.address)
        except OSError as error:
            logger.debug("systemd notification not sent: %s", error)
            return False
        return True

    def stopping(self) -> None:
        """The service begins to stop; later status changes are not reported."""
        self.is_stopping = True
        self.notify("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        notifier_socket, self._socket = self._socket, None
        if notifier_socket is not None:
            notifier_socket.close()


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of ``WATCHDOG_USEC``), or None when
    systemd expects none (no variable, or ``WATCHDOG_PID`` names another process)."""
    environ = os.environ if environ is None else environ
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        microseconds = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return microseconds / 2_000_000 if microseconds > 0 else None


class SystemdAgent:
    """What the running service tells systemd besides readiness: watchdog pings
    from the event loop, and a ``STATUS=`` line whenever ``status()`` changes
    (checked after events on the bus, at most once per loop iteration)."""

    def __init__(
        self,
        notifier: SystemdNotifier,
        status: Callable[[], str],
        events: EventBus,
        interval: float | None,
    ) -> None:
        self.notifier = notifier
        self.status = status
        self.events = events
        self.interval = interval
        self._last_status: str | None = None
        self._check_scheduled = False
        self._unsubscribe: Callable[[], None] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    def start(self) -> None:
        if not self.notifier.enabled:
            return
        self._unsubscribe = self.events.subscribe(self._on_event)
        self.send_status()
        if self.interval is not None:
            self._watchdog = asyncio.get_running_loop().create_task(
                self._ping(self.interval), name="systemd-watchdog"
            )
            logger.info("systemd watchdog: a ping every %.1f s", self.interval)

    async def _ping(self, interval: float) -> None:
        while True:
            self.notifier.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    def _on_event(self, event: Event) -> None:
        if self._check_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # published from a thread without a loop: the next event tells
        self._check_scheduled = True
        loop.call_soon(self.send_status)

    def send_status(self) -> None:
        self._check_scheduled = False
        if self.notifier.is_stopping:
            return
        status = self.status()
        if status != self._last_status:
            self._last_status = status
            self.notifier.notify(f"STATUS={status}")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
