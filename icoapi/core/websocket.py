"""WebSocket fan-out with one bounded queue and one writer task per client.

Publishing never awaits a client: a message is encoded once by the publisher and
offered to every client's queue. A client whose queue is full misses messages
(they are counted); a client that stays full for ``max_stalled`` consecutive
offers is disconnected. So a slow or dead viewer never slows the publisher or
the other clients. A :class:`ClientGroup` keeps the count of messages its
clients lost over its life (``icoapi_stream_messages_dropped_total``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

logger = logging.getLogger(__name__)

_CLOSE = object()


class WebSocketClient:
    """A connected socket with its outbound queue and writer task."""

    def __init__(
        self,
        websocket: WebSocket,
        queue_size: int,
        max_stalled: int,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue_size)
        self.max_stalled = max_stalled
        self.dropped = 0
        # Told of every message this client loses (only then: not per message sent).
        self._on_drop = on_drop
        self._stalled = 0
        self.closed = asyncio.Event()
        self._writer = asyncio.create_task(self._write(), name="websocket-writer")

    def offer(self, text: str) -> bool:
        """Queue a message; return False if it was dropped because the queue is full."""
        if self.closed.is_set():
            return False
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._count_drop()
            self._stalled += 1
            if self._stalled >= self.max_stalled:
                logger.warning("Disconnecting a WebSocket client that stopped reading")
                self.abort()
            return False
        self._stalled = 0
        return True

    def _count_drop(self) -> None:
        self.dropped += 1
        if self._on_drop is not None:
            self._on_drop()

    async def _write(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if item is _CLOSE:
                    break
                assert isinstance(item, str)
                await self.websocket.send_text(item)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the peer went away; nothing left to deliver
        finally:
            self.closed.set()
            await self._close_socket()

    async def _close_socket(self, code: int = 1000) -> None:
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.websocket.close(code=code)

    def close_after_pending(self) -> None:
        """Close the socket normally once the queued messages are sent."""
        if self.closed.is_set():
            return
        try:
            self.queue.put_nowait(_CLOSE)
        except asyncio.QueueFull:
            # Make room for the close marker: a client this far behind loses its
            # oldest message rather than never being closed.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
                self._count_drop()
            self.queue.put_nowait(_CLOSE)

    def abort(self) -> None:
        self._writer.cancel()
        self.closed.set()
        asyncio.get_running_loop().create_task(self._close_socket(code=1011))

    async def wait_closed(self, timeout: float | None = None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), timeout)


class ClientGroup:
    """A set of WebSocket clients that receive the same messages."""

    def __init__(self, queue_size: int = 64, max_stalled: int = 256) -> None:
        self.queue_size = queue_size
        self.max_stalled = max_stalled
        self.clients: set[WebSocketClient] = set()
        # Messages lost by slow clients, the departed ones included.
        self.dropped = 0

    def add(self, websocket: WebSocket) -> WebSocketClient:
        client = WebSocketClient(websocket, self.queue_size, self.max_stalled, self._dropped_one)
        self.clients.add(client)
        return client

    def _dropped_one(self) -> None:
        self.dropped += 1

    def remove(self, client: WebSocketClient) -> None:
        self.clients.discard(client)

    def broadcast(self, text: str) -> int:
        """Offer one encoded message to every live client; return how many took it."""
        delivered = 0
        for client in list(self.clients):
            if client.closed.is_set():
                self.clients.discard(client)
                continue
            delivered += client.offer(text)
        return delivered

    def close_all(self) -> None:
        for client in list(self.clients):
            client.close_after_pending()
        self.clients.clear()

    def __len__(self) -> int:
        return len(self.clients)


UNSUPPORTED_DATA = 1003  # RFC 6455: "received a type of data it cannot accept"


async def receive_text(websocket: WebSocket) -> str | None:
    """The next text frame; ``None`` after a binary frame, which is answered by
    a clean close (1003) and one short log line. Raises
    :class:`WebSocketDisconnect` when the client leaves."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if text is not None:
        return str(text)
    logger.info(
        "Closed WebSocket %s: the client sent a binary frame (only text is accepted)",
        websocket.url.path,
    )
    with contextlib.suppress(Exception):
        await websocket.close(code=UNSUPPORTED_DATA, reason="Only text frames are accepted.")
    return None


async def receive_until_disconnect(websocket: WebSocket) -> None:
    """Read and ignore client frames until the client leaves (or sends binary)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while await receive_text(websocket) is not None:
            pass
