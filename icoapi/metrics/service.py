"""One registry per app: the request histogram from the start, the service
collector while the services exist (between startup and shutdown)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest

from icoapi.core.tasks import run_blocking
from icoapi.metrics.collectors import BuildInfoCollector, ServiceCollector
from icoapi.metrics.http import HttpMetrics, RouteTemplates
from icoapi.metrics.sources import MetricSources, read_blocking


class Metrics:
    def __init__(self, route_templates: Callable[[], Iterable[str]]) -> None:
        """``route_templates``: the app's path templates (read on first use)."""
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(BuildInfoCollector())
        self.http = HttpMetrics(self.registry, RouteTemplates(route_templates))
        self._service: ServiceCollector | None = None

    def attach(self, sources: MetricSources) -> None:
        """Report the services' state from now on."""
        self.detach()
        self._service = ServiceCollector(sources)
        self.registry.register(self._service)

    def detach(self) -> None:
        service, self._service = self._service, None
        if service is not None:
            self.registry.unregister(service)

    async def render(self) -> bytes:
        """The Prometheus text exposition of every metric.

        Disk and database reads run in a thread first; the rest is read on the
        event loop in one step, so counters are never caught half-updated."""
        service = self._service
        if service is not None:
            service.readings = await run_blocking(read_blocking, service.sources)
        return generate_latest(self.registry)
