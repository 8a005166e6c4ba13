"""Reading the service's /metrics in tests."""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

# Every series issue 20 names; dashboards and alerts rely on exactly these.
REQUIRED_SERIES = (
    "icoapi_build_info",
    "icoapi_measurement_running",
    "icoapi_frames_total",
    "icoapi_frames_lost_total",
    "icoapi_measurement_dataloss_ratio",
    "icoapi_stream_clients",
    "icoapi_stream_messages_dropped_total",
    "icoapi_state_clients",
    "icoapi_stu_connected",
    "icoapi_sensor_device_connected",
    "icoapi_can_link_up",
    "icoapi_upload_jobs",
    "icoapi_upload_bytes_total",
    "icoapi_upload_failures_total",
    "icoapi_dataspace_healthy",
    "icoapi_disk_free_bytes",
)
HISTOGRAM = "icoapi_http_request_duration_seconds"


@dataclass
class Scrape:
    text: str

    @property
    def samples(self) -> list[Any]:
        return [
            sample
            for family in text_string_to_metric_families(self.text)
            for sample in family.samples
        ]

    @property
    def types(self) -> dict[str, str]:
        """Metric name (as in ``# TYPE``) -> type."""
        return dict(re.findall(r"^# TYPE (\S+) (\S+)$", self.text, re.MULTILINE))

    @property
    def names(self) -> set[str]:
        """Every name a query can use: sample names and the declared names."""
        return {sample.name for sample in self.samples} | set(self.types)

    def value(self, name: str, **labels: str) -> float:
        found = [
            sample.value
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        ]
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
        return float(found[0])

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(sample.labels) for sample in self.samples if sample.name == name]


def scrape(base_url: str, token: str | None = None) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{base_url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.text)


class NotifyListener:
    """What systemd's manager would receive."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.received: list[str] = []

    def next(self, timeout: float = 60) -> list[str]:
        """The assignments of the next datagram."""
        self.sock.settimeout(timeout)
        lines = self.sock.recv(4096).decode().split("\n")
        self.received.extend(lines)
        return lines

    def wait_for(self, predicate_line: str, timeout: float = 60, prefix: bool = False) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {predicate_line!r}; received {self.received[-20:]}"
            for line in self.next(remaining):
                if line == predicate_line or (prefix and line.startswith(predicate_line)):
                    return line

    def pending(self) -> list[str]:
        """Every datagram already waiting, without blocking."""
        self.sock.setblocking(False)
        lines: list[str] = []
        try:
            while True:
                lines += self.sock.recv(4096).decode().split("\n")
        except BlockingIOError:
            pass
        return lines

    def close(self) -> None:
        self.sock.close()
