"""A real Prometheus server (the Debian package's binary) on loopback."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support import free_port

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")

needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus binary is not installed (Debian: apt-get install prometheus)",
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian: apt-get install prometheus)",
)


class PrometheusServer:
    """Scrapes one target every ``interval`` with a bearer token from a file
    (the scrape configuration the README shows)."""

    def __init__(self, folder: Path, target: str, token: str, interval: str = "1s") -> None:
        assert PROMETHEUS is not None
        folder.mkdir(parents=True, exist_ok=True)
        token_file = folder / "icoapi.token"
        token_file.write_text(token + "\n", "utf-8")
        token_file.chmod(0o600)
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": [
                {
                    "job_name": "icoapi",
                    "scrape_interval": interval,
                    "scrape_timeout": interval,
                    "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                    "static_configs": [{"targets": [target], "labels": {"site": "test"}}],
                }
            ],
        }
        config_file = folder / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config), "utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (folder / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        self.log_path = folder / "prometheus.log"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text("utf-8", "replace")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("prometheus did not become ready")

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> list[Any]:
        result: list[Any] = self.api("query", query=expression)["result"]
        return result

    def wait_for(self, expression: str, timeout: float = 60) -> list[Any]:
        """Poll an instant query until it returns a series."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expression)
            if result:
                return result
            time.sleep(0.2)
        raise AssertionError(f"no result for {expression} within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
