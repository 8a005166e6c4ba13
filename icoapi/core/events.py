"""A small in-process event bus with typed events.

Producers publish event objects; consumers (the state WebSocket, the dataspace
upload queue) subscribe. Producers never see a socket or a consumer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SystemChanged:
    """The ICOtronic link or the connected device changed."""


@dataclass(frozen=True)
class MeasurementChanged:
    """A measurement started, ended, or its status changed otherwise."""


@dataclass(frozen=True)
class PostMetaRequested:
    """A finished measurement waits for post-measurement metadata."""


@dataclass(frozen=True)
class PostMetaCompleted:
    """The post-measurement metadata of a measurement was received."""


@dataclass(frozen=True)
class CloudChanged:
    """What ``/state`` shows of the dataspace changed: its health, the upload
    queue or the running upload's progress."""


@dataclass(frozen=True)
class ConfigChanged:
    """A configuration file was replaced (an upload or a restore); ``filename``
    names it (``sensors.yaml``, ``dataspace.yaml``, ...). Published on the event
    loop after the new file is in place."""

    filename: str


@dataclass(frozen=True)
class MeasurementFileFinished:
    """A measurement file is complete: closed, with its post-measurement metadata
    written (or given up on). Nothing writes to ``path`` after this event."""

    path: Path
    status: str


Event = (
    SystemChanged
    | MeasurementChanged
    | PostMetaRequested
    | PostMetaCompleted
    | CloudChanged
    | ConfigChanged
    | MeasurementFileFinished
)
Listener = Callable[[Event], None]


class EventBus:
    """Synchronous publish/subscribe. Listeners must be quick and must not block;
    a failing listener is logged and does not stop the others."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("Event listener failed for %s", type(event).__name__)
