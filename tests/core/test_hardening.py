"""Hostile input: binary WebSocket frames, credentials in logs in any encoding,
bodies beyond their limit (announced or chunked), huge inputs in validation
errors, and the file mode of the credentials file."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from icoapi.api import create_app
from icoapi.core.paths import AppPaths
from tests.access.helpers import settings_with_tokens
from tests.support import LiveServer, make_settings

SOCKETS = ("/api/v1/state", "/api/v1/measurement/stream", "/api/v1/logs/stream")


def test_binary_frames_get_a_clean_close(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    server = LiveServer(create_app(settings))
    server.start()
    try:
        for path in SOCKETS:
            with connect(f"{server.ws_url}{path}", open_timeout=10) as websocket:
                websocket.send(b"\x00\x01binary")
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        websocket.recv(timeout=10)
                assert closed.value.rcvd is not None, path
                assert closed.value.rcvd.code == 1003, path
        # The service still serves new sockets.
        with connect(f"{server.ws_url}/api/v1/state", open_timeout=10) as websocket:
            assert json.loads(websocket.recv(timeout=10))["message"] == "state"
    finally:
        server.stop()
    log = settings.log_file.read_text()
    assert log.count("sent a binary frame") == len(SOCKETS)
    assert "Traceback" not in log
    assert "KeyError" not in log


def test_credentials_never_reach_the_logs(tmp_path: Path) -> None:
    key = "K3y+with/odd=chars&more"
    settings, tokens = settings_with_tokens(
        tmp_path, ICOAPI_API_KEY=key, CAN_INTERFACE="virtual", CAN_CHANNEL="unused-redaction"
    )
    server = LiveServer(create_app(settings))
    server.start()
    base = f"{server.url}/api/v1"
    try:
        for encoded in (quote(key, safe=""), quote(key, safe="").lower(), quote(key, safe="/")):
            httpx.get(f"{base}/state?api_key={encoded}", timeout=10)
        httpx.get(f"{base}/files?api_key={tokens['viewer']}", timeout=10)
        httpx.get(f"{base}/files?api_key=icoapi_wrong-token-but-secret", timeout=10)
        httpx.get(f"{base}/state", headers={"authorization": f"Bearer {key}"}, timeout=10)
        offered = ["icoapi", f"icoapi.bearer.{tokens['operator']}"]
        with connect(
            f"{server.ws_url}/api/v1/state", subprotocols=offered, open_timeout=10
        ) as websocket:
            assert websocket.subprotocol == "icoapi"
            websocket.recv(timeout=10)
        served = httpx.get(
            f"{base}/logs/view",
            params={"file": settings.log_file.name},
            headers={"x-api-key": tokens["operator"]},
            timeout=10,
        ).json()["content"]
    finally:
        server.stop()
    written = settings.log_file.read_text()
    assert "GET /api/v1/state?api_key=*** HTTP/1.1" in written  # logged, redacted
    forbidden = {
        key,
        quote(key, safe=""),
        quote(key, safe="").lower(),
        quote(key, safe="/"),
        tokens["viewer"],
        tokens["operator"],
        "wrong-token-but-secret",
    }
    for text in (written, served):
        for secret in forbidden:
            assert secret not in text


def _raw_request(port: int, head: bytes, body_chunks: list[bytes]) -> bytes:
    """Send a request over a plain socket; return what the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)
        try:
            for chunk in body_chunks:
                connection.sendall(chunk)
        except OSError:
            pass  # the server answered and closed before the whole body was sent
        answer = b""
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
        return answer


def test_bodies_beyond_the_limit(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ICOAPI_MAX_BODY_BYTES=64 * 1024)
    server = LiveServer(create_app(settings))
    server.start()
    try:
        announced = _raw_request(
            server.port,
            b"POST /api/v1/measurement/start HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\ncontent-length: 52428800\r\n\r\n",
            [],
        )
        assert announced.startswith(b"HTTP/1.1 413")
        assert b'"detail": "Request body too large (the limit is 64 KiB)."' in announced
        chunk = b"[" + b"1," * 8000
        chunked = _raw_request(
            server.port,
            b"POST /api/v1/measurement/start HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
            [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 20,
        )
        assert chunked.startswith(b"HTTP/1.1 413")
        # Below the limit the route answers as usual.
        small = httpx.post(f"{server.url}/api/v1/measurement/start", json={"name": "x"}, timeout=10)
        assert small.status_code == 422
    finally:
        server.stop()


def test_validation_errors_do_not_echo_large_inputs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    server = LiveServer(create_app(settings))
    server.start()
    try:
        body = {"name": "x" * 1_000_000, "padding": ["y" * 1000] * 1000}
        answer = httpx.post(f"{server.url}/api/v1/measurement/start", json=body, timeout=30)
    finally:
        server.stop()
    assert answer.status_code == 422
    errors = answer.json()["detail"]
    assert isinstance(errors, list) and len(errors) > 5  # one per missing field
    assert len(answer.content) < 20_000
    missing = next(error for error in errors if error["type"] == "missing")
    assert isinstance(missing["input"], str) and missing["input"].endswith("… (truncated)")
    # A short input is echoed as it was.
    mac = next(error for error in errors if error["loc"] == ["body", "mac_address"])
    assert mac["type"] == "missing"


def test_credentials_file_is_private(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    paths = AppPaths.from_settings(settings)
    with TestClient(create_app(settings)) as client:
        dataspace = paths.config / "dataspace.yaml"
        metadata = paths.config / "metadata.yaml"
        assert stat.S_IMODE(dataspace.stat().st_mode) == 0o600  # copied at first start
        assert stat.S_IMODE(metadata.stat().st_mode) & 0o044  # others stay readable
        content = dataspace.read_bytes()
        dataspace.chmod(0o644)  # e.g. from an older version
        answer = client.post(
            "/api/v1/config/dataspace",
            files={"file": ("dataspace.yaml", content, "application/x-yaml")},
        )
        assert answer.status_code == 200, answer.text
        assert stat.S_IMODE(dataspace.stat().st_mode) == 0o600  # after an upload
        backups = list(paths.config_backup.glob("dataspace__*"))
        assert backups
        assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in backups)
        restore = client.put(
            "/api/v1/config/restore",
            json={"filename": "dataspace.yaml", "backup_filename": backups[0].name},
        )
        assert restore.status_code == 200, restore.text
        assert stat.S_IMODE(dataspace.stat().st_mode) == 0o600  # after a restore
    # A world-readable file left by someone else is made private at start.
    dataspace.chmod(0o644)
    with TestClient(create_app(settings)):
        assert stat.S_IMODE(dataspace.stat().st_mode) == 0o600
