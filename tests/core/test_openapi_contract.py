"""The OpenAPI document matches the answers: 422 is a list (or a message),
MAC addresses and file names have patterns, undeclared methods get 405; and a
schemathesis run over the whole schema against the running app on the simulator
finds no server error and no response-schema violation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from icoapi.api import create_app
from tests.support import make_settings

ROOT = Path(__file__).resolve().parents[2]


def _openapi(tmp_path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = create_app(make_settings(tmp_path / "data")).openapi()
    return schema


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_every_422_is_documented_as_the_validation_list(tmp_path: Path) -> None:
    schema = _openapi(tmp_path)
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            response = operation["responses"].get("422")
            if response is None:
                continue
            body = _resolve(schema, response["content"]["application/json"]["schema"])
            detail = _resolve(schema, body["properties"]["detail"])
            variants = detail.get("anyOf", [detail])
            assert any(variant.get("type") == "array" for variant in variants), (method, path)
            checked += 1
    assert checked > 10


def test_mac_addresses_and_file_names_have_patterns(tmp_path: Path) -> None:
    schema = _openapi(tmp_path)
    connect = _resolve(schema, {"$ref": "#/components/schemas/ConnectRequest"})
    mac = re.compile(connect["properties"]["mac_address"]["pattern"])
    for good in ("08-6B-D7-01-DE-81", "08:6b:d7:01:de:81", "086BD701DE81"):
        assert mac.search(good)
    for bad in ("08-6B-D7-01-DE", "08-6B:D7-01-DE-81", "zz-6B-D7-01-DE-81", ""):
        assert not mac.search(bad)
    parameters = {
        (path, parameter["name"]): parameter["schema"].get("pattern")
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
    }
    names = [pattern for (_, name), pattern in parameters.items() if name in ("name", "file")]
    assert names and all(names), parameters
    measurement_file = re.compile(parameters[("/api/v1/files/{name}", "name")])
    assert measurement_file.search("milling__2025-01-01_12-00-00.hdf5")
    for bad in ("../x.hdf5", "x.txt", ".hidden.hdf5", "a/b.hdf5"):
        assert not measurement_file.search(bad)


def test_short_inputs_are_echoed_and_undeclared_methods_get_405(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path / "data"))) as client:
        answer = client.put("/api/v1/sth/connect", json={"mac_address": "nope"})
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["input"] == "nope"
        for method, path, allow in (
            ("POST", "/api/v1/files/x.hdf5", "DELETE, GET"),
            ("PUT", "/api/v1/files/x.hdf5", "DELETE, GET"),
            ("OPTIONS", "/api/v1/files/x.hdf5", "DELETE, GET"),
            ("POST", "/api/v1/files/analyze/x.hdf5", "GET"),
            ("GET", "/api/v1/files/x.hdf5/embedded", "POST"),
            ("GET", "/api/v1/files/analyze", "POST"),
            ("OPTIONS", "/api/v1/files/x.hdf5/embedded/notes_txt", "DELETE, GET"),
            ("OPTIONS", "/api/v1/config/meta", "GET, POST"),
        ):
            answer = client.request(method, path)
            assert answer.status_code == 405, (method, path, answer.text)
            # Every method the schema has for the path, not just one route's.
            assert answer.headers["allow"] == allow, (method, path)
        # Names that no route can serve stay a 400.
        assert client.get("/api/v1/files/a/b/c/d.hdf5").status_code == 400


@pytest.mark.parametrize("access", [[], ["--access-control"]], ids=["open", "with-token"])
def test_fuzz_the_whole_schema(access: list[str]) -> None:
    """The short version of ``make fuzz``: fewer examples, and one schemathesis
    worker (the same requests for less CPU than two; the suite runs in parallel)."""
    fuzz = [sys.executable, str(ROOT / "scripts" / "fuzz.py"), "--max-examples", "8"]
    run = subprocess.run(
        [*fuzz, "--workers", "1", *access],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = run.stdout + run.stderr
    summary = report[report.rfind("API Operations") :]
    assert run.returncode == 0, report[-6000:]
    assert "Failures" not in summary, summary
    tested = re.search(r"Tested: (\d+)", summary)
    assert tested is not None and int(tested.group(1)) >= 40, summary
