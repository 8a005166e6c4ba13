"""Request body limits, per route.

A body that announces (``Content-Length``) more than its route's limit is
refused with 413 before any of it is read. A body that arrives without a length
(chunked) is counted while the route reads it; once it passes the limit the
client gets 413, the route sees a disconnected client, and whatever the route
still sends is dropped. So no request body can grow memory or disk beyond the
limit, whatever the route does with it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from icoapi.core.asgi import send_error
from icoapi.core.routes import RoutePattern

logger = logging.getLogger(__name__)


def _size_text(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


def _too_large(limit: int) -> str:
    return f"Request body too large (the limit is {_size_text(limit)})."


class BodySizeLimit:
    """``limits``: (method, path pattern, bytes) for specific routes (``*`` for any
    method), checked in order; every other request gets ``default``."""

    def __init__(
        self, app: ASGIApp, *, default: int, limits: Iterable[tuple[str, str, int]] = ()
    ) -> None:
        self.app = app
        self.default = default
        self.limits = [
            (method, RoutePattern.compile(pattern), size) for method, pattern, size in limits
        ]

    def limit_for(self, method: str, path: str) -> int:
        for rule_method, pattern, size in self.limits:
            if rule_method in ("*", method) and pattern.matches(path):
                return size
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            logger.info("Refused %s %s: body of %s bytes", scope["method"], scope["path"], length)
            await send_error(send, 413, _too_large(limit), close=True)
            return

        received = 0
        refused = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    logger.info(
                        "Refused %s %s: body beyond %d bytes", scope["method"], scope["path"], limit
                    )
                    if not response_started:
                        await send_error(send, 413, _too_large(limit), close=True)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the client already has its 413
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The route failed on the cut-off body; the client has its answer.
            logger.debug("Route ended with an error after a refused body", exc_info=True)
