"""Request guard: API key authentication and cross-site request protection.

* **Cross-site requests.** A browser sends an ``Origin`` header with every
  WebSocket handshake and every state-changing request. Such requests are refused
  unless the origin is this service itself or one of ``VITE_API_ORIGINS``: a web
  page on another site can then neither drive the hardware, upload files nor
  read the live streams. Clients that are not browsers send no ``Origin``.
* **API key.** With ``ICOAPI_API_KEY`` set, every ``/api`` request needs the key
  (header ``X-API-Key``, ``Authorization: Bearer <key>``, or the query parameter
  ``api_key`` for WebSockets and download links), except from
  ``ICOAPI_TRUSTED_NETWORKS`` and for the liveness probe.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from icoapi.core.asgi import send_error

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_origins: Iterable[str],
        api_key: str | None,
        trusted_networks: Iterable[Network],
        api_prefix: str,
    ) -> None:
        self.app = app
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in allowed_origins)
        self.api_key = api_key.encode() if api_key else None
        self.trusted_networks = tuple(trusted_networks)
        self.api_prefix = api_prefix
        self.open_paths = {f"{api_prefix}/health"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        is_websocket = scope["type"] == "websocket"
        if (is_websocket or scope["method"] in UNSAFE_METHODS) and not self._origin_allowed(
            headers.get("origin"), headers.get("host")
        ):
            origin = headers.get("origin")
            await self._refuse(
                scope,
                send,
                403,
                f"Cross-site request refused: origin {origin} is not allowed "
                "(add it to VITE_API_ORIGINS).",
            )
            return
        if (
            self.api_key is not None
            and self._needs_key(scope)
            and not self._has_key(scope, headers)
        ):
            await self._refuse(scope, send, 401, "Missing or invalid API key.")
            return
        await self.app(scope, receive, send)

    def _origin_allowed(self, origin: str | None, host: str | None) -> bool:
        if origin is None or origin.rstrip("/") in self.allowed_origins:
            return True
        # Pages served by this service itself (same host and port).
        return host is not None and urlsplit(origin).netloc.lower() == host.lower()

    def _needs_key(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if not path.startswith(f"{self.api_prefix}/") or path in self.open_paths:
            return False
        client = scope.get("client")
        if client and self.trusted_networks:
            try:
                address = ipaddress.ip_address(client[0])
            except ValueError:
                return True
            if any(address in network for network in self.trusted_networks):
                return False
        return True

    def _has_key(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.api_key is not None
        candidates = [headers.get("x-api-key", "")]
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            candidates.append(authorization[7:].strip())
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        candidates.extend(query.get("api_key", []))
        return any(
            hmac.compare_digest(candidate.encode(), self.api_key) for candidate in candidates
        )

    async def _refuse(self, scope: Scope, send: Send, status: int, detail: str) -> None:
        if scope["type"] == "websocket":
            # Refusing before accept makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
            return
        await send_error(send, status, detail)
