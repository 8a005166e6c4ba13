"""Prometheus metrics: ``GET /metrics`` at the server root.

Values are read from the services when Prometheus scrapes (custom collectors),
so the data path only keeps the counters it already has. One registry per app
(:class:`~icoapi.metrics.service.Metrics` on ``app.state.metrics``), never the
library's global one: tests build many apps in one process."""
