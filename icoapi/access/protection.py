"""Wiring of the request protection: the middleware stack in its order, the
body limits per route, the access tokens and the uvicorn options that belong to
security. ``create_app`` and ``main`` call these; the pieces live in
:mod:`icoapi.access.guard`, :mod:`icoapi.core.limits` and :mod:`icoapi.core.asgi`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware

from icoapi.access.guard import HostPolicy, RequestGuard
from icoapi.access.tokens import TokenFileError, TokenStore, load_tokens
from icoapi.core.asgi import UnhandledErrors
from icoapi.core.connections import (
    ConnectionWatch,
    connection_ceiling,
    descriptor_limit,
    guarded_http_protocol,
)
from icoapi.core.errors import (
    BodyTooLargeError,
    ForbiddenError,
    UnauthorizedError,
    error_responses,
)
from icoapi.core.json_bodies import StrictJsonBodies
from icoapi.core.limits import BodySizeLimit
from icoapi.core.settings import Settings

logger = logging.getLogger(__name__)

# The middleware's answers, possible on every route (OpenAPI ``responses=``).
GUARD_RESPONSES = error_responses(UnauthorizedError, ForbiddenError, BodyTooLargeError)


def load_access_tokens(settings: Settings) -> TokenStore:
    """The tokens file plus ``ICOAPI_API_KEY``.

    :raises TokenFileError: the file is unreadable or invalid, or it exists but
        holds no token: someone meant to turn access control on, and silently
        running without it would be the opposite."""
    path = settings.tokens_file
    tokens = load_tokens(path)
    if not tokens.entries and path.exists():
        raise TokenFileError(
            f"{path} holds no tokens, so access control would be off. Add a token "
            "(python -m icoapi.access add <name> --role operator), or delete the file "
            "to run without access control."
        )
    api_key = settings.ICOAPI_API_KEY.get_secret_value() if settings.ICOAPI_API_KEY else None
    return tokens.with_api_key(api_key)


def body_limits(settings: Settings) -> list[tuple[str, str, int]]:
    """Per-route body limits (method, path pattern, bytes) beyond the default."""
    prefix = settings.api_prefix
    # Multipart framing around the file(s) adds a little to the files' size.
    upload = settings.ICOAPI_MAX_UPLOAD_BYTES + 1024 * 1024
    return [
        ("POST", f"{prefix}/files/analyze", upload),
        ("POST", f"{prefix}/files/{{name}}/embedded", upload),
        # Configuration files are small YAML files (the service checks 1 MiB of
        # content); the margin leaves room for the multipart framing.
        ("POST", f"{prefix}/config/{{kind}}", 2 * 1024 * 1024),
    ]


def add_protection(app: Starlette, settings: Settings, tokens: TokenStore) -> None:
    """Add the middleware, innermost first (each one added wraps the ones before).

    CORS is outermost: it answers preflights itself (never the guard), and every
    answer to an allowed origin carries CORS headers, the guard's 400/401/403,
    the 413 and the 500 of the safety net included."""
    app.add_middleware(UnhandledErrors)
    # Inside the body limit: it buffers JSON bodies, which the limit bounds.
    app.add_middleware(StrictJsonBodies)
    app.add_middleware(
        BodySizeLimit, default=settings.ICOAPI_MAX_BODY_BYTES, limits=body_limits(settings)
    )
    app.add_middleware(
        RequestGuard,
        allowed_origins=settings.VITE_API_ORIGINS,
        hosts=HostPolicy(settings.ICOAPI_ALLOWED_HOSTS),
        tokens=tokens,
        trusted_networks=settings.ICOAPI_TRUSTED_NETWORKS,
        api_prefix=settings.api_prefix,
        proxies_trusted=bool(settings.ICOAPI_TRUSTED_PROXIES),
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.VITE_API_ORIGINS,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Content-Disposition", "WWW-Authenticate"],
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Server options that belong to the service's security: forwarded headers
    are believed only from ``ICOAPI_TRUSTED_PROXIES`` (uvicorn alone would
    believe them from 127.0.0.1, so any local process could claim any address),
    and connections are limited (:mod:`icoapi.core.connections`). Each call
    gives a new server its own limits."""
    proxies = settings.ICOAPI_TRUSTED_PROXIES
    ceiling = connection_ceiling(settings.ICOAPI_MAX_CONNECTIONS, descriptor_limit())
    watch = ConnectionWatch(ceiling, settings.ICOAPI_HEADER_TIMEOUT)
    return {
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": ",".join(proxies) if proxies else "",
        "server_header": False,
        "http": guarded_http_protocol(watch),
    }


def log_access_control(settings: Settings, tokens: TokenStore) -> None:
    """Say at startup whether access control is on; warn when it is off on a
    non-loopback address, or when the tokens file is readable by others."""
    if tokens.enabled:
        logger.info(
            "Access control on: %d token(s) (%s)",
            len(tokens.entries),
            ", ".join(f"{entry.name}: {entry.role.label}" for entry in tokens.entries),
        )
        _warn_if_readable(settings.tokens_file)
    elif settings.VITE_API_HOSTNAME not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(
            "Access control off (no tokens in %s, no ICOAPI_API_KEY): anyone who can "
            "reach %s:%d can control the hardware",
            settings.tokens_file,
            settings.VITE_API_HOSTNAME,
            settings.VITE_API_PORT,
        )


def _warn_if_readable(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o077:
        logger.warning(
            "The tokens file %s is readable by other users (mode %o); chmod 600 it",
            path,
            mode & 0o777,
        )
