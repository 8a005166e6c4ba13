"""/metrics follows the access rules: with tokens on, a metrics, viewer or
operator token reads it; a metrics token reads nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.routing import Route

from icoapi.access.rules import METRICS, SERVER_RULES, RuleBook
from icoapi.access.tokens import add_token
from icoapi.api import create_app
from tests.access.helpers import settings_with_tokens
from tests.metrics.support import scrape
from tests.support import LiveServer, make_settings


def test_metrics_needs_a_metrics_viewer_or_operator_token(
    tmp_path: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    settings, tokens = settings_with_tokens(tmp_path)
    prometheus = add_token(settings.tokens_file, "prometheus", "metrics")
    server = live_server_factory(settings)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        missing = http.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = http.get("/metrics", headers={"Authorization": "Bearer icoapi_wrongwrongwrong"})
        assert wrong.status_code == 401
        # The metrics role reads /metrics, and nothing of the API.
        state = http.get("/api/v1/state", headers={"Authorization": f"Bearer {prometheus}"})
        assert state.status_code == 403
        assert "viewer role" in state.json()["detail"]
    for token in (prometheus, tokens["viewer"], tokens["operator"]):
        assert "icoapi_frames_total" in scrape(server.url, token).names


def test_trusted_networks_need_no_token(
    tmp_path: Path, live_server_factory: Callable[..., Any]
) -> None:
    settings, _ = settings_with_tokens(tmp_path, ICOAPI_TRUSTED_NETWORKS="127.0.0.0/8")
    server = live_server_factory(settings)
    assert "icoapi_build_info" in scrape(server.url).names


def test_server_rules_name_existing_routes(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "data"))
    routes = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and route.methods
        for method in route.methods
    }
    assert set(SERVER_RULES) <= routes
    assert RuleBook.server_rule("HEAD", "/metrics") == METRICS
    assert RuleBook.server_rule("GET", "/metrics/") == METRICS
    assert RuleBook.server_rule("GET", "/docs") is None
