"""Each role against every route: 401 without or with a wrong token, 403 for a
role that may not, and the route's own answer otherwise. WebSockets take the
token as a query parameter or (from a browser) as a subprotocol."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from icoapi.access.rules import OPERATOR, PUBLIC, Role, RuleBook
from icoapi.api import create_app
from tests.access.helpers import settings_with_tokens
from tests.support import app_of

PREFIX = "/api/v1"
PATH_VALUES = {"{name}": "missing.hdf5", "{dataset_name}": "notes_txt", "{file}": "icodaq.log"}
WEBSOCKETS = ("/state", "/measurement/stream", "/logs/stream")


@pytest.fixture
def api_with_tokens(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings, tokens = settings_with_tokens(tmp_path)
    with TestClient(create_app(settings)) as client:
        yield client, tokens


def _operations(client: TestClient) -> list[tuple[str, str, Role]]:
    rules = RuleBook()
    operations = []
    for template, methods in app_of(client).openapi()["paths"].items():
        path = template
        for placeholder, value in PATH_VALUES.items():
            path = path.replace(placeholder, value)
        for method in methods:
            rule = rules.rule(method.upper(), template[len(PREFIX) :])
            assert rule is not None
            operations.append((method.upper(), path, rule))
    return operations


def _request(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    body = {} if method in ("POST", "PUT") else None
    return client.request(method, path, json=body, headers=headers).status_code


def test_each_role_against_each_route(api_with_tokens: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api_with_tokens
    operations = _operations(client)
    assert len(operations) > 30
    for method, path, rule in operations:
        where = f"{method} {path}"
        anonymous = _request(client, method, path, {})
        wrong = _request(client, method, path, {"authorization": "Bearer icoapi_wrongwrongwrong"})
        viewer = _request(client, method, path, {"authorization": f"Bearer {tokens['viewer']}"})
        operator = _request(client, method, path, {"x-api-key": tokens["operator"]})
        if rule is PUBLIC:
            assert 401 not in (anonymous, wrong), where
        else:
            assert (anonymous, wrong) == (401, 401), where
        if rule is OPERATOR:
            assert viewer == 403, where
        else:
            assert viewer not in (401, 403), where
        assert operator not in (401, 403), where


def test_refusals_say_why(api_with_tokens: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api_with_tokens
    missing = client.get(f"{PREFIX}/state")
    assert missing.status_code == 401
    assert missing.json() == {"detail": "Missing token."}
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = client.get(f"{PREFIX}/state", headers={"x-api-key": "icoapi_not-a-real-token-at-all"})
    assert wrong.json() == {"detail": "Invalid token."}
    forbidden = client.put(
        f"{PREFIX}/reset-can", headers={"authorization": f"Bearer {tokens['viewer']}"}
    )
    assert forbidden.status_code == 403
    assert "operator role" in forbidden.json()["detail"]
    assert "viewer-token" in forbidden.json()["detail"]
    # The token in the query string (download links) works as well.
    assert client.get(f"{PREFIX}/files?api_key={tokens['viewer']}").status_code == 200


@pytest.mark.parametrize("path", WEBSOCKETS)
def test_websockets_need_a_token(
    api_with_tokens: tuple[TestClient, dict[str, str]], path: str
) -> None:
    client, tokens = api_with_tokens
    with pytest.raises(WebSocketDenialResponse) as missing, client.websocket_connect(PREFIX + path):
        pass
    assert missing.value.status_code == 401
    with (
        pytest.raises(WebSocketDenialResponse) as wrong,
        client.websocket_connect(f"{PREFIX}{path}?api_key=icoapi_wrongwrongwrongwrong"),
    ):
        pass
    assert wrong.value.status_code == 401
    # A browser cannot set headers on a WebSocket: query parameter or subprotocol.
    with client.websocket_connect(f"{PREFIX}{path}?api_key={tokens['viewer']}"):
        pass
    offered = ["icoapi", f"icoapi.bearer.{tokens['viewer']}"]
    with client.websocket_connect(PREFIX + path, subprotocols=offered) as socket:
        # The service picks the plain protocol: the token is never echoed.
        assert socket.accepted_subprotocol == "icoapi"
    # The token alone cannot be selected (it would be echoed): a clear refusal.
    with (
        pytest.raises(WebSocketDenialResponse) as alone,
        client.websocket_connect(PREFIX + path, subprotocols=offered[1:]),
    ):
        pass
    assert alone.value.status_code == 400
    assert "icoapi" in alone.value.json()["detail"]
    assert tokens["viewer"] not in alone.value.text
    assert tokens["viewer"] not in str(alone.value.headers)


def test_state_socket_with_token_subprotocol_and_origin(
    api_with_tokens: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = api_with_tokens
    offered = ["icoapi", f"icoapi.bearer.{tokens['viewer']}"]
    with client.websocket_connect(
        f"{PREFIX}/state", subprotocols=offered, headers={"origin": "http://localhost:5173"}
    ) as socket:
        state = socket.receive_json()
        assert state["message"] == "state"
        assert state["data"]["access_control"] is True
    # A right token does not make a foreign page's socket acceptable.
    with (
        pytest.raises(WebSocketDenialResponse) as foreign,
        client.websocket_connect(
            f"{PREFIX}/state", subprotocols=offered, headers={"origin": "http://evil.example"}
        ),
    ):
        pass
    assert foreign.value.status_code == 403


def test_api_key_is_an_operator_token(tmp_path: Path) -> None:
    settings, tokens = settings_with_tokens(tmp_path, ICOAPI_API_KEY="legacy-key-with+/=&")
    with TestClient(create_app(settings)) as client:
        key = {"x-api-key": "legacy-key-with+/=&"}
        assert client.post(f"{PREFIX}/measurement/stop", headers=key).status_code == 200
        viewer = {"x-api-key": tokens["viewer"]}
        assert client.post(f"{PREFIX}/measurement/stop", headers=viewer).status_code == 403


def test_access_control_off_without_tokens(tmp_path: Path) -> None:
    from tests.support import make_settings

    settings = make_settings(tmp_path / "data", ICOAPI_TRUSTED_NETWORKS="")
    with TestClient(create_app(settings)) as client:
        # The web client sends no credentials: everything works as before.
        assert client.post(f"{PREFIX}/measurement/stop").status_code == 200
        # A browser client written for tokens keeps working when they are off.
        offered = ["icoapi", "icoapi.bearer.icoapi_from-an-old-deployment"]
        for protocols in (["icoapi"], offered):
            with client.websocket_connect(f"{PREFIX}/state", subprotocols=protocols) as socket:
                assert socket.accepted_subprotocol == "icoapi"
        state = client.get(f"{PREFIX}/state").json()
        assert state["access_control"] is False


def test_trusted_network_acts_as_operator_without_token(tmp_path: Path) -> None:
    # TestClient's client address is "testclient", not an IP: use a real server.
    from tests.support import LiveServer

    settings, tokens = settings_with_tokens(tmp_path, ICOAPI_TRUSTED_NETWORKS="127.0.0.0/8")
    server = LiveServer(create_app(settings))
    server.start()
    try:
        import httpx

        with httpx.Client(base_url=f"{server.url}{PREFIX}", timeout=30) as http:
            assert http.post("/measurement/stop").status_code == 200
            # A token presented is still checked, and its role applies.
            viewer = {"authorization": f"Bearer {tokens['viewer']}"}
            assert http.post("/measurement/stop", headers=viewer).status_code == 403
            wrong = {"authorization": "Bearer icoapi_wrongwrongwrongwrong"}
            assert http.get("/state", headers=wrong).status_code == 401
    finally:
        server.stop()
