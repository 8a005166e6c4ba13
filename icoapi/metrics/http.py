"""Request latency per route template, method and status class.

The route is the template (``/api/v1/files/{name}``), never the raw path, and
methods outside HTTP's usual ones count as ``other``: whatever paths clients
send, the histogram has a bounded number of series. Paths no route serves are
``unmatched``. Only HTTP requests are timed (a WebSocket's duration is its
connection's life)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from icoapi.core.routes import HTTP_METHODS, RoutePattern

UNMATCHED = "unmatched"
OTHER_METHOD = "other"
# Seconds; from a cached state read to a large file download.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Raw paths whose template is remembered; unknown paths only churn this cache.
CACHE_SIZE = 2048


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "5xx"


class RouteTemplates:
    """Maps a request path to the template of the route that serves it.

    The templates come from the app (its OpenAPI paths and its own top-level
    routes such as ``/docs`` and ``/metrics``) on first use, so routers added
    after the middleware count too. Matching is by path alone, like the access
    rules: a wrong method on a known path keeps the path's template."""

    def __init__(self, templates: Callable[[], Iterable[str]]) -> None:
        self._source = templates
        self._patterns: list[RoutePattern] | None = None
        self._cache: dict[str, str] = {}

    def load(self) -> list[RoutePattern]:
        """Read the app's templates (once; the app's startup calls this, so no
        request waits for the OpenAPI document to be built)."""
        if self._patterns is None:
            patterns = {RoutePattern.compile(template) for template in self._source()}
            # Most literal segments first: "/files/analyze" before "/files/{name}".
            self._patterns = sorted(patterns, key=lambda p: (-p.literal_segments, p.pattern))
        return self._patterns

    def template(self, path: str) -> str:
        found = self._cache.get(path)
        if found is not None:
            return found
        found = next((p.pattern for p in self.load() if p.matches(path)), UNMATCHED)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[path] = found
        return found


def app_templates(app: Any) -> list[str]:
    """Every HTTP path template of a FastAPI app: the documented ones and the
    app's own undocumented routes."""
    templates = list(app.openapi().get("paths", {}))
    templates += [route.path for route in app.routes if isinstance(route, Route)]
    return templates


class HttpMetrics:
    """The request-duration histogram of one registry, and the route templates
    its ``route`` label takes."""

    def __init__(self, registry: CollectorRegistry, templates: RouteTemplates) -> None:
        self.templates = templates
        self.duration = Histogram(
            "icoapi_http_request_duration_seconds",
            "Time from the request to the end of the response body, by route template, "
            "method and status class.",
            ["route", "method", "status_class"],
            buckets=BUCKETS,
            registry=registry,
        )

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else OTHER_METHOD
        route = self.templates.template(path)
        self.duration.labels(route, method, status_class(status)).observe(seconds)


class RequestTiming:
    """ASGI middleware that times every HTTP request into :class:`HttpMetrics`.

    It is the outermost middleware, so refusals of the request guard and the
    safety net's 500 are timed as well."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an error that escapes before an answer started

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe(scope["path"], scope["method"], status, seconds)
