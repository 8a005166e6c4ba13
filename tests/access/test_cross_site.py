"""Cross-site request protection and the optional API key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from icoapi.api import create_app
from tests.support import LiveServer, make_settings


def test_cross_site_requests_are_refused(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path / "data"))) as http:
        evil = {"origin": "http://evil.example"}
        response = http.put("/api/v1/reset-can", headers=evil)
        assert response.status_code == 403
        assert "evil.example" in response.json()["detail"]
        assert http.post("/api/v1/measurement/stop", headers=evil).status_code == 403
        # Reading is not a change; CORS keeps the answer from the foreign page.
        assert http.get("/api/v1/state", headers=evil).status_code == 200
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            http.websocket_connect("/api/v1/state", headers=evil),
        ):
            pass
        assert refused.value.status_code == 403
        # The web client's origin, the service itself and non-browser clients pass.
        for headers in ({"origin": "http://localhost:5173"}, {"origin": "http://testserver"}, {}):
            assert http.post("/api/v1/measurement/stop", headers=headers).status_code == 200
        with http.websocket_connect(
            "/api/v1/state", headers={"origin": "http://localhost:5173"}
        ) as socket:
            assert socket.receive_json()["message"] == "state"


def test_api_key(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", ICOAPI_API_KEY="s3cret-key-123", ICOAPI_TRUSTED_NETWORKS=""
    )
    with TestClient(create_app(settings)) as http:
        assert http.get("/api/v1/health").status_code == 200  # liveness stays open
        refused = http.get("/api/v1/state")
        assert (refused.status_code, refused.json()) == (
            401,
            {"detail": "Missing token."},
        )
        assert http.get("/api/v1/state", headers={"x-api-key": "wrong"}).status_code == 401
        assert http.get("/api/v1/state", headers={"x-api-key": "s3cret-key-123"}).status_code == 200
        bearer = {"authorization": "Bearer s3cret-key-123"}
        assert http.get("/api/v1/state", headers=bearer).status_code == 200
        assert http.get("/api/v1/state?api_key=s3cret-key-123").status_code == 200
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            http.websocket_connect("/api/v1/state"),
        ):
            pass
        assert denied.value.status_code == 401
        with http.websocket_connect("/api/v1/state?api_key=s3cret-key-123") as socket:
            assert socket.receive_json()["message"] == "state"
    log = settings.log_file.read_text()
    assert "s3cret-key-123" not in log


def test_loopback_is_trusted_by_default(tmp_path: Path) -> None:
    # A real server: the client address is 127.0.0.1, which is trusted by default.
    server = LiveServer(create_app(make_settings(tmp_path / "data", ICOAPI_API_KEY="k3y-k3y-k3y")))
    server.start()
    try:
        assert httpx.get(f"{server.url}/api/v1/state", timeout=10).status_code == 200
    finally:
        server.stop()
    untrusted = make_settings(
        tmp_path / "other", ICOAPI_API_KEY="k3y-k3y-k3y", ICOAPI_TRUSTED_NETWORKS="10.0.0.0/8"
    )
    server = LiveServer(create_app(untrusted))
    server.start()
    try:
        assert httpx.get(f"{server.url}/api/v1/state", timeout=10).status_code == 401
    finally:
        server.stop()
