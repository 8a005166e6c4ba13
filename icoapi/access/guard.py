"""Request guard: Host check, cross-site protection and access control.

Runs before every route and WebSocket (inside CORS, so its refusals carry CORS
headers for allowed origins, and preflights never reach it):

* **Host check (DNS rebinding).** The ``Host`` header must be an IP address,
  ``localhost`` (or ``*.localhost``), a name without a dot (an intranet name such
  as ``revpi``), this machine's name (also with ``.local``) or one of
  ``ICOAPI_ALLOWED_HOSTS``. A page on a public name the attacker controls (and
  re-points to this machine) is refused.
* **Cross-site requests.** A browser sends ``Origin`` with every WebSocket
  handshake and state-changing request; those are refused unless the origin is
  one of ``VITE_API_ORIGINS`` or this service itself (``Origin`` equal to a
  ``Host`` that passed the Host check).
* **Access control** (on as soon as a token exists: the tokens file or
  ``ICOAPI_API_KEY``). Each route needs a role (:mod:`icoapi.access.rules`). The
  token comes from ``Authorization: Bearer``, ``X-API-Key``, the query parameter
  ``api_key`` or, for browser WebSockets, the subprotocol ``icoapi.bearer.<token>``.
  No token: clients in ``ICOAPI_TRUSTED_NETWORKS`` act as operator (unless the
  request came through a proxy that is not in ``ICOAPI_TRUSTED_PROXIES``), others
  get 401. A wrong token gets 401, a role that may not do this 403.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from icoapi.access.rules import Role, RuleBook
from icoapi.access.tokens import Identity, TokenStore
from icoapi.core.asgi import refuse_websocket, send_error

logger = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Browsers cannot set headers on WebSockets; they can offer subprotocols. A client
# offers "icoapi" and "icoapi.bearer.<token>"; the service selects "icoapi".
WEBSOCKET_PROTOCOL = "icoapi"
BEARER_PROTOCOL_PREFIX = "icoapi.bearer."
TRUSTED_NETWORK = Identity("trusted network", Role.OPERATOR)
NO_ACCESS_CONTROL = Identity("access control off", Role.OPERATOR)
WWW_AUTHENTICATE = [(b"www-authenticate", b'Bearer realm="icoapi"')]


def split_host(host: str) -> str:
    """The name or address of a ``Host`` header value, without port and brackets."""
    host = host.strip()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() else host


class HostPolicy:
    """Which ``Host`` header values the service answers to."""

    def __init__(self, names: Iterable[str], machine_names: Iterable[str] | None = None) -> None:
        configured = {name.strip().lower().rstrip(".") for name in names if name.strip()}
        self.any = "*" in configured
        if machine_names is None:
            hostname = socket.gethostname().lower()
            machine_names = (hostname, f"{hostname}.local")
        self.names = frozenset(configured | {"localhost", *machine_names})

    def allows(self, host: str | None) -> bool:
        if host is None or self.any:
            # HTTP/1.0 clients may send no Host; browsers always do.
            return True
        name = split_host(host).lower().rstrip(".")
        try:
            ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            return True  # an address literal is never a rebinding attack
        # A rebinding attack needs a name the attacker can point at this machine
        # in public DNS, which always has a dot: single-label (intranet) names pass.
        if name in self.names or "." not in name or name.endswith(".localhost"):
            return True
        return any(
            allowed.startswith("*.") and name.endswith(allowed[1:]) for allowed in self.names
        )


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_origins: Iterable[str],
        hosts: HostPolicy,
        tokens: TokenStore,
        trusted_networks: Iterable[Network],
        api_prefix: str,
        proxies_trusted: bool = False,
        rules: RuleBook | None = None,
    ) -> None:
        self.app = app
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in allowed_origins)
        self.hosts = hosts
        self.tokens = tokens
        self.trusted_networks = tuple(trusted_networks)
        self.api_prefix = api_prefix
        self.proxies_trusted = proxies_trusted
        self.rules = rules or RuleBook()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        is_websocket = scope["type"] == "websocket"
        host = headers.get("host")
        if not self.hosts.allows(host):
            shown = (host or "")[:80]
            await self._refuse(
                scope,
                send,
                400,
                f"Host '{shown}' is not allowed (add it to ICOAPI_ALLOWED_HOSTS).",
            )
            return
        method = "WS" if is_websocket else scope["method"]
        if (is_websocket or method in UNSAFE_METHODS) and not self._origin_allowed(
            headers.get("origin"), host
        ):
            origin = headers.get("origin", "")[:80]
            await self._refuse(
                scope,
                send,
                403,
                f"Cross-site request refused: origin {origin} is not allowed "
                "(add it to VITE_API_ORIGINS).",
            )
            return
        protocols = [
            part.strip()
            for part in headers.get("sec-websocket-protocol", "").split(",")
            if part.strip()
        ]
        if WEBSOCKET_PROTOCOL not in protocols and any(
            p.startswith(BEARER_PROTOCOL_PREFIX) for p in protocols
        ):
            # The handshake must select one offered subprotocol; the only one
            # offered here is the token, which is never echoed.
            await self._refuse(
                scope,
                send,
                400,
                f"Offer the subprotocol '{WEBSOCKET_PROTOCOL}' together with "
                f"'{BEARER_PROTOCOL_PREFIX}<token>': the service selects "
                f"'{WEBSOCKET_PROTOCOL}' and never echoes a token.",
            )
            return
        path: str = scope["path"]
        in_api = path.startswith(f"{self.api_prefix}/") or path == self.api_prefix
        server_rule = None if in_api else self.rules.server_rule(method, path)
        if in_api or server_rule is not None:
            identity = NO_ACCESS_CONTROL
            # Without tokens every request passes: no rule lookup on that path.
            needed = (
                (server_rule or self.rules.required(method, path[len(self.api_prefix) :] or "/"))
                if self.tokens.enabled
                else Role.PUBLIC
            )
            if needed > Role.PUBLIC:
                token = self._presented_token(scope, headers, protocols)
                found = self._identify(scope, headers, token)
                if found is None:
                    detail = "Missing token." if token is None else "Invalid token."
                    await self._refuse(scope, send, 401, detail, WWW_AUTHENTICATE)
                    return
                identity = found
                if identity.role < needed:
                    await self._refuse(
                        scope,
                        send,
                        403,
                        f"Not allowed: this needs the {needed.label} role, "
                        f"the token '{identity.name}' has the {identity.role.label} role.",
                    )
                    return
            scope.setdefault("state", {})["identity"] = identity
        if is_websocket and WEBSOCKET_PROTOCOL in protocols:
            send = self._selecting_protocol(send)
        await self.app(scope, receive, send)

    def _origin_allowed(self, origin: str | None, host: str | None) -> bool:
        if origin is None or origin.rstrip("/") in self.allowed_origins:
            return True
        # Pages served by this service itself: same host and port. The Host has
        # passed the Host check, so this is not a name an attacker re-pointed.
        return host is not None and urlsplit(origin).netloc.lower() == host.lower()

    def _presented_token(
        self, scope: Scope, headers: dict[str, str], protocols: list[str]
    ) -> str | None:
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer " and authorization[7:].strip():
            return authorization[7:].strip()
        if headers.get("x-api-key"):
            return headers["x-api-key"]
        query_string: bytes = scope.get("query_string", b"")
        query = parse_qs(query_string.decode("latin-1"))
        if query.get("api_key"):
            return query["api_key"][0]
        for protocol in protocols:
            if protocol.startswith(BEARER_PROTOCOL_PREFIX):
                return protocol[len(BEARER_PROTOCOL_PREFIX) :]
        return None

    def _identify(
        self, scope: Scope, headers: dict[str, str], token: str | None
    ) -> Identity | None:
        if token is not None:
            return self.tokens.identify(token)
        if not self.proxies_trusted and ("x-forwarded-for" in headers or "forwarded" in headers):
            # Forwarded by a proxy that is not in ICOAPI_TRUSTED_PROXIES: the peer
            # address is the proxy's, not the client's, so it proves nothing.
            return None
        client = scope.get("client")
        if client and self.trusted_networks:
            try:
                address = ipaddress.ip_address(client[0])
            except ValueError:
                return None
            if any(address in network for network in self.trusted_networks):
                return TRUSTED_NETWORK
        return None

    @staticmethod
    def _selecting_protocol(send: Send) -> Send:
        """Accept the handshake with the plain subprotocol the client offered
        (browsers drop a connection whose answer names none of theirs)."""

        async def send_with_protocol(message: Message) -> None:
            if message["type"] == "websocket.accept" and not message.get("subprotocol"):
                message = {**message, "subprotocol": WEBSOCKET_PROTOCOL}
            await send(message)

        return send_with_protocol

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        status: int,
        detail: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        logger.info(
            "Refused %s %s: %s (%d)",
            scope.get("method", "WebSocket"),
            scope["path"],
            detail,
            status,
        )
        if scope["type"] == "websocket":
            await refuse_websocket(scope, send, status, detail, headers or [])
            return
        await send_error(send, status, detail, headers=headers or [])
