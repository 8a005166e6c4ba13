"""Helpers for the service's plain ASGI middleware."""

from __future__ import annotations

import json

from starlette.types import Send


async def send_error(send: Send, status: int, detail: str, close: bool = False) -> None:
    """Answer with ``{"detail": ...}`` as the routes' errors do."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
