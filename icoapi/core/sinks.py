"""What a service needs of a connected client to push messages to it.

Services produce encoded messages and hand them to sinks; the HTTP layer makes
sinks of its sockets (:class:`icoapi.core.websocket.WebSocketClient` is one). So
a service pushes to clients without knowing of WebSockets."""

from __future__ import annotations

from typing import Protocol


class MessageSink(Protocol):
    def offer(self, text: str) -> bool:
        """Queue one message without waiting; False if the client did not take it."""
        ...

    def close_after_pending(self) -> None:
        """End the connection once the queued messages are delivered."""
        ...

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Return once the connection is closed, or after ``timeout`` seconds."""
        ...
