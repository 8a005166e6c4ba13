"""Time limits of hardware operations, injectable so that nothing waits on the
icotronic library's built-in limits longer than the service wants to.

The library itself bounds a request by attempts (10 attempts of 0.6–1.5 s, about
10.5 s in all) and a device search by 20 s; neither is a parameter of its public
calls. :class:`AttemptLimitedSPU` caps the attempts, and :class:`ICOSystem`
searches for a device itself (bounded by :attr:`HardwareTimeouts.device_search`)
before it lets the library connect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import can
from icotronic.can.node.spu import SPU

from icoapi.core.settings import Settings

# The library's own number of attempts per request (SPU.request's default).
LIBRARY_REQUEST_ATTEMPTS = 10


@dataclass(frozen=True)
class HardwareTimeouts:
    """Upper bounds in seconds (attempts: a count) for hardware operations."""

    request: float = 30.0
    """One whole hardware operation (``CAN_REQUEST_TIMEOUT``)."""
    request_attempts: int = LIBRARY_REQUEST_ATTEMPTS
    """How often one CAN request is sent before it counts as unanswered
    (``CAN_REQUEST_ATTEMPTS``)."""
    device_search: float = 10.0
    """How long a connect looks for the device before it answers 404
    (``CAN_DEVICE_SEARCH_TIMEOUT``); the hardware lock is held meanwhile."""
    connect: float = 25.0
    """A whole connect: search, Bluetooth connection and reading the name."""
    scan: float = 15.0
    """A whole scan (the library collects devices for up to 5 s)."""
    reset: float = 20.0
    """An STU reset until the STU is operational again."""
    stream_silence: float = 5.0
    """Longest silence between two data frames of a running stream before
    reading fails (``CAN_STREAM_TIMEOUT``)."""
    bus_off_reset: float = 5.0
    """How long the controller may stay bus-off before the service reopens the
    link itself; 0: never (``CAN_BUS_OFF_RESET``)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> HardwareTimeouts:
        search = settings.CAN_DEVICE_SEARCH_TIMEOUT
        return cls(
            request=settings.CAN_REQUEST_TIMEOUT,
            request_attempts=settings.CAN_REQUEST_ATTEMPTS,
            device_search=search,
            # Room for the Bluetooth connection after a search that used its time.
            connect=max(cls.connect, search + 15.0),
            stream_silence=settings.CAN_STREAM_TIMEOUT,
            bus_off_reset=settings.CAN_BUS_OFF_RESET,
        )


class AttemptLimitedSPU(SPU):  # type: ignore[misc]  # icotronic has no type hints
    """icotronic's SPU with at most ``attempts`` attempts per request.

    Requests that ask for fewer attempts themselves (e.g. the library's stop of
    a stream) keep their own number."""

    def __init__(self, bus: can.BusABC, notifier: can.Notifier, attempts: int) -> None:
        super().__init__(bus, notifier)
        self.attempts = attempts

    async def request(
        self,
        message: Any,
        description: str,
        response_data: Any = None,
        minimum_timeout: float = 0,
        retries: int = LIBRARY_REQUEST_ATTEMPTS,
    ) -> Any:
        return await super().request(
            message,
            description,
            response_data=response_data,
            minimum_timeout=minimum_timeout,
            retries=min(retries, self.attempts),
        )
