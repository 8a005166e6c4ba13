"""JSON bodies that only Python's parser takes (NaN, infinities, numbers out of
range, lone surrogates) get 422 on every route that takes JSON, never 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from icoapi.api import create_app
from icoapi.core.errors import shorten_validation_errors
from icoapi.core.json_bodies import NotJsonError, check_json
from tests.support import make_settings

P = "/api/v1"
MAC = "08-6B-D7-01-DE-81"
META = {"version": "1", "profile": "milling", "parameters": {"depth": 1.5}}
START = {
    "name": "run",
    "mac_address": MAC,
    "time": 1,
    "first": {"channel_number": 1, "sensor_id": None},
    "second": {"channel_number": 0, "sensor_id": None},
    "third": {"channel_number": 0, "sensor_id": None},
    "ift_requested": False,
    "ift_channel": "first",
    "ift_window_width": 150,
    "adc": {"prescaler": 2, "acquisition_time": 8, "oversampling_rate": 64},
    "meta": META,
}
# Each route that takes JSON, with a valid body and the fields to spoil.
ROUTES: list[tuple[str, str, dict[str, Any], list[tuple[str, ...]]]] = [
    ("PUT", "/sth/connect", {"mac_address": MAC}, [("mac_address",)]),
    ("PUT", "/sth/rename", {"mac_address": MAC, "new_name": "Tool"}, [("new_name",)]),
    (
        "PUT",
        "/sth/write-adc",
        {"prescaler": 2, "acquisition_time": 8},
        [("prescaler",), ("reference_voltage",)],
    ),
    (
        "POST",
        "/measurement/start",
        START,
        [("name",), ("time",), ("adc", "reference_voltage"), ("meta", "parameters", "depth")],
    ),
    ("POST", "/measurement/post_meta", META, [("version",), ("parameters", "depth")]),
    ("POST", "/files/pre_meta/x.hdf5", META, [("profile",), ("parameters", "depth")]),
    ("POST", "/files/post_meta/x.hdf5", META, [("parameters", "depth")]),
    (
        "PUT",
        "/config/restore",
        {"filename": "sensors.yaml", "backup_filename": "sensors__1.yaml"},
        [("filename",)],
    ),
    ("POST", "/cloud/upload", {"filename": "x.hdf5"}, [("filename",)]),
    ("POST", "/cloud/update", {"filename": "x.hdf5", "file_id": "1"}, [("file_id",)]),
]
NOT_JSON = ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", '"\\ud83d"', '"a\\udc00b"')
MARKER = "__SPOILED__"


def spoiled(body: dict[str, Any], path: tuple[str, ...], value: str) -> str:
    """``body`` as JSON text with the field at ``path`` replaced by raw ``value``."""
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = MARKER
    return json.dumps(copy).replace(f'"{MARKER}"', value)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("json") / "data"
    with TestClient(create_app(make_settings(data)), raise_server_exceptions=False) as client:
        yield client


CASES = [
    pytest.param(method, route, body, path, value, id=f"{route}:{'.'.join(path)}={value}")
    for method, route, body, paths in ROUTES
    for path in paths
    for value in NOT_JSON
]


@pytest.mark.parametrize(("method", "route", "body", "path", "value"), CASES)
def test_values_json_does_not_have_get_422(
    client: TestClient,
    method: str,
    route: str,
    body: dict[str, Any],
    path: tuple[str, ...],
    value: str,
) -> None:
    response = client.request(
        method, P + route, content=spoiled(body, path, value), headers=JSON_HEADERS
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert ("surrogate" if "\\u" in value else "number") in error["ctx"]["error"]


JSON_HEADERS = {"content-type": "application/json"}


def test_surrogate_pairs_and_look_alikes_pass(client: TestClient) -> None:
    # A paired surrogate is a real character; text that looks like a constant is text.
    body = {**META, "parameters": {"smile": "\\ud83d\\ude00", "note": "NaN Infinity 1e400"}}
    text = json.dumps(body).replace("\\\\ud83d\\\\ude00", "\\ud83d\\ude00")
    response = client.post(f"{P}/measurement/post_meta", content=text, headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    # An escaped backslash before "u" is not an escape.
    check_json(b'{"path": "C:\\\\ud83d"}')
    with pytest.raises(NotJsonError):
        check_json(b'{"x": [1, 2, {"y": -Infinity}]}')
    with pytest.raises(NotJsonError):
        check_json(b'{"\\udfff": 1}')
    with pytest.raises(NotJsonError):
        check_json(b'{"x": 1' + b"0" * 400 + b".5}")


def test_validation_errors_never_fail_to_echo_their_input() -> None:
    errors = shorten_validation_errors(
        [
            {"loc": ("body", "x"), "msg": "bad", "type": "t", "input": float("nan")},
            {"loc": ("body", "y"), "msg": "bad", "type": "t", "input": {"a": [float("-inf")]}},
            {"loc": ("body", "z"), "msg": "bad", "type": "t", "input": "\ud83d"},
            {"loc": ("body", "w"), "msg": "bad", "type": "t", "input": {"\udc00": "x" * 500}},
            {"loc": ("q",), "msg": "bad", "type": "t", "input": 1, "ctx": {"le": float("inf")}},
        ]
    )
    encoded = json.dumps(errors, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert b"NaN" not in encoded
    assert [error["input"] for error in errors[:3]] == ["nan", {"a": ["-inf"]}, "\\ud83d"]
    assert errors[4]["ctx"] == {"le": "inf"}


def test_malformed_json_keeps_its_answer(client: TestClient) -> None:
    response = client.post(f"{P}/measurement/post_meta", content=b"{", headers=JSON_HEADERS)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    # A body without a content type is still JSON to FastAPI, and checked alike.
    response = client.post(f"{P}/measurement/post_meta", content=b'{"version": NaN}')
    assert response.status_code == 422
