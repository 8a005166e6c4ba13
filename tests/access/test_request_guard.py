"""The request guard on a real server: DNS rebinding, preflights, CORS headers on
every error, and forwarded headers believed only from trusted proxies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from icoapi.api import create_app
from tests.access.helpers import settings_with_tokens
from tests.support import make_settings

ORIGIN = "http://localhost:5173"
KEY = "k3y-for-guard-tests"


def test_dns_rebinding_is_refused(tmp_path: Path, live_app_factory: Any) -> None:
    settings = make_settings(
        tmp_path / "data", ICOAPI_API_KEY=KEY, ICOAPI_ALLOWED_HOSTS="icodaq.example.com"
    )
    server = live_app_factory(create_app(settings))
    stop = f"{server.url}/api/v1/measurement/stop"
    # The reproduction from the issue: a page on evil.example re-pointed to
    # 127.0.0.1, whose Origin equals its Host; loopback needs no key.
    evil = {"host": f"evil.example:{server.port}", "origin": f"http://evil.example:{server.port}"}
    refused = httpx.post(stop, headers=evil, timeout=10)
    assert refused.status_code == 400
    assert "ICOAPI_ALLOWED_HOSTS" in refused.json()["detail"]
    assert httpx.get(f"{server.url}/api/v1/state", headers=evil, timeout=10).status_code == 400
    with pytest.raises(InvalidStatus) as socket_refused:
        connect(f"{server.ws_url}/api/v1/state", additional_headers=evil, open_timeout=10)
    assert socket_refused.value.response.status_code == 400
    # Addresses, localhost, intranet names and configured names are this service.
    for host in (
        f"127.0.0.1:{server.port}",
        f"localhost:{server.port}",
        "revpi-line3:33215",
        "icodaq.example.com",
        "[::1]:33215",
    ):
        origin = {"host": host, "origin": f"http://{host}"}
        assert httpx.post(stop, headers=origin, timeout=10).status_code == 200, host


def test_preflight_is_answered_by_cors_not_by_auth(tmp_path: Path, live_app_factory: Any) -> None:
    settings = make_settings(tmp_path / "data", ICOAPI_API_KEY=KEY, ICOAPI_TRUSTED_NETWORKS="")
    server = live_app_factory(create_app(settings))
    url = f"{server.url}/api/v1/reset-can"
    preflight = httpx.options(
        url,
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "PUT",
            "access-control-request-headers": "authorization, content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    # The request the browser then sends, with the key in a header.
    headers = {"origin": ORIGIN, "authorization": f"Bearer {KEY}"}
    answer = httpx.get(f"{server.url}/api/v1/state", headers=headers, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ORIGIN


def test_every_error_carries_cors_headers(tmp_path: Path, live_app_factory: Any) -> None:
    settings, tokens = settings_with_tokens(tmp_path)
    app = create_app(settings)

    @app.get("/api/v1/failing-route-for-test")
    async def failing() -> None:
        raise RuntimeError("broken on purpose")

    server = live_app_factory(app)
    base = f"{server.url}/api/v1"
    operator = {"origin": ORIGIN, "authorization": f"Bearer {tokens['operator']}"}
    viewer = {"origin": ORIGIN, "authorization": f"Bearer {tokens['viewer']}"}
    oversized = {**operator, "content-type": "application/json"}
    answers = {
        401: httpx.get(f"{base}/state", headers={"origin": ORIGIN}, timeout=10),
        403: httpx.put(f"{base}/reset-can", headers=viewer, timeout=10),
        413: httpx.post(
            f"{base}/measurement/start",
            headers=oversized,
            content=b" " * (settings.ICOAPI_MAX_BODY_BYTES + 1),
            timeout=30,
        ),
        500: httpx.get(f"{base}/failing-route-for-test", headers=operator, timeout=10),
        400: httpx.get(f"{base}/state", headers={**operator, "host": "evil.example"}, timeout=10),
    }
    for status, answer in answers.items():
        assert answer.status_code == status
        assert answer.headers.get("access-control-allow-origin") == ORIGIN, status
        assert isinstance(answer.json()["detail"], str), status
    assert answers[500].json() == {"detail": "Internal server error (RuntimeError)."}
    log = settings.log_file.read_text()
    assert log.count("broken on purpose") >= 1  # the traceback is logged once
    assert log.count("Unhandled error in GET /api/v1/failing-route-for-test") == 1


def test_forwarded_headers_only_from_trusted_proxies(tmp_path: Path, live_app_factory: Any) -> None:
    spoofed = {"x-forwarded-for": "10.1.2.3"}
    # Key needed except from 10.0.0.0/8; the test client is 127.0.0.1.
    plain = make_settings(
        tmp_path / "plain", ICOAPI_API_KEY=KEY, ICOAPI_TRUSTED_NETWORKS="10.0.0.0/8"
    )
    server = live_app_factory(create_app(plain))
    # uvicorn alone would take 10.1.2.3 from a 127.0.0.1 peer and skip the key.
    answer = httpx.get(f"{server.url}/api/v1/state", headers=spoofed, timeout=10)
    assert answer.status_code == 401
    behind_proxy = make_settings(
        tmp_path / "proxied",
        ICOAPI_API_KEY=KEY,
        ICOAPI_TRUSTED_NETWORKS="10.0.0.0/8",
        ICOAPI_TRUSTED_PROXIES="127.0.0.1",
    )
    proxied = live_app_factory(create_app(behind_proxy))
    answer = httpx.get(f"{proxied.url}/api/v1/state", headers=spoofed, timeout=10)
    assert answer.status_code == 200
    # The proxy is believed about where the client is; a client the proxy
    # forwards from outside the trusted network needs the key.
    outside = {"x-forwarded-for": "192.0.2.7"}
    answer = httpx.get(f"{proxied.url}/api/v1/state", headers=outside, timeout=10)
    assert answer.status_code == 401


def test_untrusted_proxy_does_not_make_its_clients_trusted(
    tmp_path: Path, live_app_factory: Any
) -> None:
    # A proxy on this machine, forgotten in ICOAPI_TRUSTED_PROXIES: every request
    # it forwards comes from 127.0.0.1, a trusted network by default.
    settings = make_settings(tmp_path / "data", ICOAPI_API_KEY=KEY)
    server = live_app_factory(create_app(settings))
    url = f"{server.url}/api/v1/measurement/stop"
    assert httpx.post(url, timeout=10).status_code == 200  # a local client
    for forwarded in ({"x-forwarded-for": "198.51.100.4"}, {"forwarded": "for=198.51.100.4"}):
        assert httpx.post(url, headers=forwarded, timeout=10).status_code == 401
        with_key = {**forwarded, "x-api-key": KEY}
        assert httpx.post(url, headers=with_key, timeout=10).status_code == 200
