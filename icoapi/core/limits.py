"""Refuse request bodies that announce a size beyond a route's limit, before any
of the body is read (Starlette would otherwise spool a whole multipart upload to
disk before the route can check it)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from icoapi.core.asgi import send_error


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, limits: dict[str, int]) -> None:
        self.app = app
        # Longest prefix first, so a specific route wins over its parent.
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            limit = next(
                (size for prefix, size in self.limits if scope["path"].startswith(prefix)), None
            )
            length = dict(scope["headers"]).get(b"content-length")
            too_large = (
                limit is not None
                and length is not None
                and length.isdigit()
                and int(length) > limit
            )
            if too_large:
                assert limit is not None
                detail = f"Request body too large (the limit is {limit // 1024} KiB)."
                await send_error(send, 413, detail, close=True)
                return
        await self.app(scope, receive, send)
