"""The service scraped by a real Prometheus server, and its output checked by promtool."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from icoapi.access.tokens import add_token
from tests.measurement.helpers import (
    connect_device,
    instructions,
    measurement_file,
    read_table,
    start,
    wait_idle,
)
from tests.metrics.prometheus import (
    PROMTOOL,
    PrometheusServer,
    needs_prometheus,
    needs_promtool,
)
from tests.metrics.support import scrape
from tests.support import LiveServer, make_settings, simulator_of, simulator_options


@needs_prometheus
def test_prometheus_sees_the_runs_frame_count(
    tmp_path: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    # Access control on and no trusted network: Prometheus must send its token.
    settings = make_settings(
        tmp_path / "data",
        CAN_INTERFACE="simulator",
        ICOAPI_TOKENS_FILE=tmp_path / "tokens.yaml",
        ICOAPI_TRUSTED_NETWORKS="",
    )
    token = add_token(settings.tokens_file, "prometheus", "metrics")
    operator = add_token(settings.tokens_file, "operator", "operator")
    server = live_server_factory(settings, can_bus_options=simulator_options())
    prometheus = PrometheusServer(tmp_path / "prometheus", f"127.0.0.1:{server.port}", token)
    try:
        prometheus.wait_ready()
        (up,) = prometheus.wait_for('up{job="icoapi"} == 1')
        assert up["metric"]["instance"] == f"127.0.0.1:{server.port}"

        simulator = simulator_of(server.app)
        mac = simulator.config.devices[0].mac
        with httpx.Client(
            base_url=f"{server.url}/api/v1",
            headers={"Authorization": f"Bearer {operator}"},
            timeout=60,
        ) as http:
            connect_device(http, mac)
            name = start(http, instructions(mac, time=2))["data"]["name"]
            wait_idle(server)
        ended = time.time()
        _, attributes, _ = read_table(measurement_file(server, name))
        frames = int(attributes["frames"])
        assert frames > 0

        # A sample scraped after the run ended holds the run's frame count.
        prometheus.wait_for(f'timestamp(icoapi_frames_total{{job="icoapi"}}) > {ended:.3f}')
        (result,) = prometheus.query('icoapi_frames_total{job="icoapi"}')
        assert int(float(result["value"][1])) == frames
        assert result["metric"]["site"] == "test"
        (running,) = prometheus.query('icoapi_measurement_running{job="icoapi"}')
        assert float(running["value"][1]) == 0
        # The run was seen while it ran (1 s scrapes of a 2 s run).
        seen = prometheus.query('max_over_time(icoapi_measurement_running{job="icoapi"}[5m])')
        assert float(seen[0]["value"][1]) == 1
        # The request histogram arrives with its route templates.
        routes = prometheus.api("label/route/values")
        assert "/api/v1/measurement/start" in routes
        assert "/metrics" in routes
    finally:
        prometheus.stop()


@needs_promtool
def test_promtool_accepts_the_output(
    sim_server: LiveServer, client: httpx.Client, tmp_path: Path
) -> None:
    client.get("/state")
    client.get("/files/missing.hdf5")  # a histogram series with a 4xx
    text = scrape(sim_server.url).text
    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60
    )
    output = (checked.stdout + checked.stderr).decode()
    assert checked.returncode == 0, output
    assert output.strip() == "", output  # no lint remarks either
