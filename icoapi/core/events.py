"""A small in-process event bus: producers publish named events, consumers (the
state WebSocket) subscribe. Producers never see a socket."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

Listener = Callable[[str, Any], None]

# Event names. "<domain>:<what happened>".
SYSTEM_CHANGED = "system:changed"
MEASUREMENT_CHANGED = "measurement:changed"
POST_META_REQUEST = "measurement:post_meta_request"
POST_META_COMPLETED = "measurement:post_meta_completed"
CLOUD_CHANGED = "cloud:changed"


class EventBus:
    """Synchronous publish/subscribe. Listeners must be quick and must not block;
    a failing listener is logged and does not stop the others."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, event: str, data: Any = None) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, data)
            except Exception:
                logger.exception("Event listener failed for %s", event)
