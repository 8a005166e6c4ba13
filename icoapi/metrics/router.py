"""``GET /metrics``: the Prometheus scrape endpoint at the server root."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from icoapi.metrics.service import Metrics

router = APIRouter()


# Not in the OpenAPI document: it is not part of the versioned API (README,
# "Running many units"). With access control on it needs a metrics, viewer or
# operator token (icoapi/access/rules.py, SERVER_RULES).
@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    # The text format 0.0.4: what every Prometheus server since 2.0 reads.
    registry: Metrics = request.app.state.metrics
    return Response(await registry.render(), media_type=CONTENT_TYPE_PLAIN_0_0_4)
