"""``GET /metrics``: the Prometheus scrape endpoint at the server root."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from icoapi.metrics.service import Metrics


async def metrics(request: Request) -> Response:
    """The Prometheus text format 0.0.4 (what every Prometheus since 2.0 reads)."""
    registry: Metrics = request.app.state.metrics
    return Response(await registry.render(), media_type=CONTENT_TYPE_PLAIN_0_0_4)


def add_metrics_route(app: FastAPI) -> None:
    """``/metrics`` on the app itself, not in a router under the API prefix, and
    not in the OpenAPI document (it is not part of the versioned API; README,
    "Running many units"). With access control on it needs a metrics, viewer or
    operator token (``SERVER_RULES`` in :mod:`icoapi.access.rules`)."""
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
