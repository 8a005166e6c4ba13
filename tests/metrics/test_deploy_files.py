"""The Grafana dashboard and the alert rules in deploy/ use only series the
service exports, cover what an operator of many units watches, and are valid
for Prometheus (promtool)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from icoapi.core.settings import Settings
from tests.metrics.prometheus import PROMTOOL, needs_promtool
from tests.metrics.support import scrape
from tests.support import ROOT, LiveServer

DASHBOARD = ROOT / "deploy" / "grafana" / "icoapi.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
# Series Prometheus itself adds to every target.
PROMETHEUS_SERIES = {"up"}
# Exported once the disk-reserve setting exists (issue 18); until then optional.
RESERVE = "icoapi_disk_reserve_bytes"


def metric_names(expression: str) -> set[str]:
    """Metric names in a PromQL expression: every icoapi_ name, and any other
    name used as a selector (``name{...}``)."""
    names = set(re.findall(r"\bicoapi_[a-z0-9_]+", expression))
    names |= {
        name
        for name in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expression)
        if name not in ("by", "without", "on", "ignoring")
    }
    return names


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            expressions.append(variable["definition"])
    return expressions


def alert_expressions() -> list[str]:
    document = yaml.safe_load(ALERTS.read_text("utf-8"))
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


@pytest.fixture
def exported(sim_server: LiveServer, client: httpx.Client) -> set[str]:
    client.get("/state")  # the request histogram has series once a request was timed
    names = scrape(sim_server.url).names | PROMETHEUS_SERIES
    if "ICOAPI_DISK_RESERVE_BYTES" not in Settings.model_fields:
        names.add(RESERVE)
    return names


def test_the_dashboard_uses_exported_series_per_instance(exported: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    used = set().union(*(metric_names(e) for e in dashboard_expressions(dashboard)))
    assert used - exported == set()
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    # Every query is filtered by the unit picker and shows which unit it is.
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert '$instance"' in target["expr"], panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(panel["title"].lower() for panel in panels)
    for topic in ("measuring", "loss", "stream clients", "disk", "upload queue", "latency"):
        assert topic in titles, topic
    (instance,) = [v for v in dashboard["templating"]["list"] if v["name"] == "instance"]
    assert instance["multi"] and instance["includeAll"]


def test_the_alerts_use_exported_series(exported: set[str]) -> None:
    used = set().union(*(metric_names(expression) for expression in alert_expressions()))
    assert used - exported == set()
    names = {
        rule["alert"]
        for group in yaml.safe_load(ALERTS.read_text("utf-8"))["groups"]
        for rule in group["rules"]
    }
    for alert in ("IcoapiDown", "IcoapiDataLoss", "IcoapiDiskBelowReserve", "IcoapiUploadsFailing"):
        assert alert in names


def test_metric_names_are_found_in_expressions() -> None:
    # The check above is only as good as this extraction.
    assert metric_names(
        "histogram_quantile(0.95, sum by (le) (rate(icoapi_http_request_duration_seconds_bucket"
        '{instance=~"$instance"}[5m]))) and up{job="icoapi"} == 1'
    ) == {"icoapi_http_request_duration_seconds_bucket", "up"}


@needs_promtool
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    assert PROMTOOL is not None
    for command in (["check", "rules", ALERTS.name], ["test", "rules", ALERT_TESTS.name]):
        result = subprocess.run(
            [PROMTOOL, *command], cwd=ALERTS.parent, capture_output=True, timeout=60
        )
        output = (result.stdout + result.stderr).decode()
        assert result.returncode == 0, output
        assert "SUCCESS" in output


def test_deploy_files_are_where_the_readme_says() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for path in (DASHBOARD, ALERTS):
        assert str(Path(path).relative_to(ROOT)) in readme
