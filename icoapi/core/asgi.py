"""Helpers for the service's plain ASGI middleware."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


def error_body(detail: str | list[dict[str, Any]]) -> bytes:
    return json.dumps({"detail": detail}).encode()


async def send_error(
    send: Send,
    status: int,
    detail: str | list[dict[str, Any]],
    close: bool = False,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with ``{"detail": ...}`` as the routes' errors do."""
    body = error_body(detail)
    response_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    if close:
        response_headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


async def refuse_websocket(
    scope: Scope,
    send: Send,
    status: int,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Refuse a WebSocket handshake with an HTTP status and ``{"detail": ...}``
    where the server supports it (uvicorn does), else with close code 1008
    (the server then answers the handshake with 403)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = error_body(detail)
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})


class UnhandledErrors:
    """The safety net for errors no route handled: logs the traceback once and
    answers 500 ``{"detail": ...}``. It sits inside the CORS middleware (unlike
    Starlette's own last-resort handler), so the browser sees the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] in _STARTING_MESSAGES:
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            what = scope.get("method", "WebSocket")
            logger.exception("Unhandled error in %s %s", what, scope["path"])
            with contextlib.suppress(Exception):
                if scope["type"] == "websocket":
                    # Before accept this refuses the handshake; after, it closes.
                    await send({"type": "websocket.close", "code": 1011})
                elif not started:
                    detail = f"Internal server error ({type(error).__name__})."
                    await send_error(send, 500, detail)
            # A response already under way cannot be replaced: the connection ends.


_STARTING_MESSAGES = frozenset(
    {"http.response.start", "websocket.accept", "websocket.close", "websocket.http.response.start"}
)
