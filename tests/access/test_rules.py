"""Every route and WebSocket has an explicit access rule (a new route without one
fails here), and the rule book finds rules by method and path pattern."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIWebSocketRoute

from icoapi.access.rules import OPERATOR, PUBLIC, RULES, VIEWER, WEBSOCKET, RuleBook
from icoapi.api import create_app
from tests.support import make_settings

PREFIX = "/api/v1"


def _websocket_paths(routes: list[Any], prefix: str = "") -> Iterator[str]:
    """The WebSocket paths of an app, through its included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _websocket_paths(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIWebSocketRoute):
            yield prefix + route.path


def _app_routes(tmp_path: Path) -> list[tuple[str, str]]:
    app = create_app(make_settings(tmp_path / "data"))
    routes = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]
    routes += [(WEBSOCKET, path) for path in _websocket_paths(app.routes)]
    return routes


def test_every_route_and_websocket_has_an_explicit_rule(tmp_path: Path) -> None:
    routes = _app_routes(tmp_path)
    assert (WEBSOCKET, f"{PREFIX}/state") in routes  # the walk reaches WebSockets
    assert ("GET", f"{PREFIX}/files/{{name}}") in routes
    missing = [
        (method, path)
        for method, path in routes
        if not path.startswith(PREFIX) or (method, path[len(PREFIX) :]) not in RULES
    ]
    assert missing == [], f"routes without an access rule in icoapi/access/rules.py: {missing}"


def test_rules_name_only_existing_routes(tmp_path: Path) -> None:
    existing = {(method, path[len(PREFIX) :]) for method, path in _app_routes(tmp_path)}
    stale = [key for key in RULES if key not in existing]
    assert stale == []


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/health", PUBLIC),
        ("HEAD", "/health", PUBLIC),
        ("GET", "/state", VIEWER),
        (WEBSOCKET, "/state", VIEWER),
        ("GET", "/files/analyze/a.hdf5", VIEWER),
        ("GET", "/files/analyze/meta/a.hdf5", VIEWER),
        ("GET", "/files/a.hdf5", VIEWER),
        ("GET", "/files/a.hdf5/", VIEWER),
        ("DELETE", "/files/a.hdf5", OPERATOR),
        ("GET", "/files/a.hdf5/embedded/notes_txt", VIEWER),
        ("DELETE", "/files/a.hdf5/embedded/notes_txt", OPERATOR),
        ("POST", "/files/analyze", OPERATOR),
        ("GET", "/sth", OPERATOR),
        ("GET", "/logs/download/icodaq.log.1", VIEWER),
        # Dataspace routes, ruled before they exist.
        ("GET", "/cloud", VIEWER),
        ("GET", "/cloud/queue", VIEWER),
        ("POST", "/cloud/upload", OPERATOR),
        ("POST", "/cloud/queue/17/retry", OPERATOR),
        ("POST", "/cloud/queue/17/cancel", OPERATOR),
        # No rule: fail closed.
        ("GET", "/no/such/route", OPERATOR),
        ("PATCH", "/state", OPERATOR),
        ("GET", "/files/a/b/c/d/e", OPERATOR),
    ],
)
def test_rule_lookup_by_method_and_pattern(method: str, path: str, role: int) -> None:
    assert RuleBook().required(method, path) == role
