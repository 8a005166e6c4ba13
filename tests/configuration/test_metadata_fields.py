"""metadata.yaml: field definitions must be ones the web client can render, and a
disabled file's default profile is not checked."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from icoapi.api import CONFIG_FILE_NAMES, CONFIG_KINDS
from icoapi.configuration.service import ConfigService
from icoapi.core.events import EventBus
from icoapi.core.logging import SecretRedactor
from icoapi.core.paths import AppPaths
from tests.configuration.yaml_samples import dump, shipped, with_header

CONFIG = "/api/v1/config"
# What the client's input provider draws (icoweb-client-needs.md).
CLIENT_DATATYPES = {
    "text",
    "text_box",
    "dropdown",
    "text_suggestions",
    "int",
    "float",
    "int_qty",
    "float_qty",
    "boolean",
    "image",
}
CLIENT_TYPES = {"default", "implementation", "range"}
CLIENT_REQUIRED = {"required", "optional", "restricted"}

# The shape of the web client's own example: disabled, and its default profile
# names a profile that does not exist.
CLIENT_EXAMPLE = """\
info:
  schema_name: metadata_schema
  schema_version: "0.0.1"
  config_name: Example Metadata
  config_version: disabled
  config_date: "2025-03-01T10:00:00+00:00"
default_profile_id: default
profiles:
  milling:
    id: milling
    name: Milling
    pre:
      Process:
        tool:
          id: tool
          label: Tool
          datatype: dropdown
          type: default
          required: required
          options: [end mill, drill]
        spindle_speed:
          id: spindle_speed
          label: Spindle speed
          datatype: int_qty
          type: default
          required: optional
          unit: 1/min
    post:
      Result:
        comment:
          id: comment
          label: Comment
          datatype: text_box
          type: default
          required: optional
"""


def upload(api: TestClient, content: bytes) -> Any:
    return api.post(
        f"{CONFIG}/meta", files={"file": ("metadata.yaml", content, "application/x-yaml")}
    )


def fields(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every field definition of every profile (sections nest)."""
    found: list[dict[str, Any]] = []

    def visit(entries: dict[str, Any]) -> None:
        for entry in entries.values():
            if isinstance(entry, dict) and "datatype" in entry:
                found.append(entry)
            elif isinstance(entry, dict):
                visit(entry)

    for profile in document["profiles"].values():
        for part in ("pre", "post"):
            visit(profile.get(part) or {})
    return found


def enabled_field(**definition: Any) -> dict[str, Any]:
    """The shipped file, enabled, with the operator field replaced."""
    document = with_header(shipped("metadata.yaml"), config_version="1.0")
    definition.setdefault("required", "optional")
    person = {
        "id": "person",
        "label": "Operator",
        **{key: value for key, value in definition.items() if value is not None},
    }
    document["profiles"]["milling"]["pre"]["General"]["person"] = person
    return document


def test_shipped_file_is_disabled_and_renderable(api: TestClient, paths: AppPaths) -> None:
    served = api.get(f"{CONFIG}/meta")
    assert served.status_code == 200
    document = yaml.safe_load(served.content)
    # The client shows no metadata form for a disabled file.
    assert document["info"]["config_version"] == "disabled"
    profile = document["profiles"][document["default_profile_id"]]
    assert profile["pre"]["General"]["person"]["datatype"] == "text"
    assert profile["post"]["General"]["comment"]["datatype"] == "text_box"
    for field in fields(document):
        assert field["datatype"] in CLIENT_DATATYPES
        assert field["type"] in CLIENT_TYPES
        assert field["required"] in CLIENT_REQUIRED
    # The service's own validation accepts it, byte for byte, and enabled too.
    shipped_bytes = (paths.config / "metadata.yaml").read_bytes()
    assert upload(api, shipped_bytes).status_code == 200
    assert upload(api, dump(enabled_field(datatype="text", type="default"))).status_code == 200


def test_unknown_datatype_is_refused_with_its_line(api: TestClient, paths: AppPaths) -> None:
    before = (paths.config / "metadata.yaml").read_bytes()
    # What the old shipped file had: no input is drawn for "string".
    text = dump(enabled_field(datatype="string", type="text", required="optional")).decode()
    response = upload(api, text.encode())
    assert response.status_code == 422
    lines = text.splitlines()
    datatype_line = lines.index("          datatype: string") + 1
    type_line = lines.index("          type: text") + 1
    prefix = "profiles -> milling -> pre -> General -> person"
    assert response.json()["detail"] == (
        "Provided YAML does not satisfy metadata schema. Errors: "
        f"{prefix} -> datatype: expected 'text', 'text_box', 'dropdown', 'text_suggestions', "
        f"'int', 'float', 'int_qty', 'float_qty', 'boolean' or 'image' (line {datatype_line}); "
        f"{prefix} -> type: expected 'default', 'implementation' or 'range' (line {type_line})"
    )
    assert (paths.config / "metadata.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        # datatype and type swapped, as in the old shipped file
        (
            {"datatype": "default", "type": "text_box"},
            "datatype: expected 'text', 'text_box'",
        ),
        ({"datatype": "text", "type": "default", "required": "yes"}, "required: expected"),
        (
            {"datatype": "text", "type": "default", "required": None},
            "required: required field is missing",
        ),
        ({"datatype": "dropdown", "type": "default"}, "options: a dropdown needs"),
        ({"datatype": "dropdown", "type": "default", "options": []}, "options: a dropdown needs"),
        (
            {"datatype": "text_suggestions", "type": "default"},
            "options: datatype text_suggestions needs a list of options",
        ),
        ({"datatype": "float_qty", "type": "default"}, "unit: datatype float_qty needs a unit"),
        ({"datatype": "int_qty", "type": "default", "unit": ""}, "unit: expected non-empty"),
    ],
)
def test_definitions_the_client_cannot_render_are_refused(
    api: TestClient, definition: dict[str, Any], problem: str
) -> None:
    response = upload(api, dump(enabled_field(**definition)))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert f"profiles -> milling -> pre -> General -> person -> {problem}" in detail
    assert "(line " in detail


@pytest.mark.parametrize(
    "definition",
    [
        {"datatype": datatype, "type": "default", "required": "optional"}
        for datatype in ("text", "text_box", "int", "float", "boolean", "image")
    ]
    + [
        {"datatype": "dropdown", "type": "default", "options": ["a", "b"]},
        {"datatype": "text_suggestions", "type": "default", "options": []},
        {"datatype": "int_qty", "type": "range", "unit": "mm", "required": "required"},
        {
            "datatype": "float_qty",
            "type": "implementation",
            "unit": "m/s",
            "required": "restricted",
        },
    ],
)
def test_every_renderable_definition_is_accepted(
    api: TestClient, definition: dict[str, Any]
) -> None:
    response = upload(api, dump(enabled_field(**definition)))
    assert response.status_code == 200, response.text


def test_client_example_with_unknown_default_profile_is_accepted(
    api: TestClient, paths: AppPaths
) -> None:
    response = upload(api, CLIENT_EXAMPLE.encode())
    assert response.status_code == 200, response.text
    assert response.json()["config_version"] == "disabled"
    assert (paths.config / "metadata.yaml").read_bytes() == CLIENT_EXAMPLE.encode()
    # Restoring it from a backup works as well (the upload above made one of the
    # shipped file; upload again so the example itself becomes the backup).
    assert upload(api, dump(shipped("metadata.yaml"))).status_code == 200
    example = CLIENT_EXAMPLE.encode()
    example_backup = next(
        path.name for path in paths.config_backup.iterdir() if path.read_bytes() == example
    )
    restored = api.put(
        f"{CONFIG}/restore",
        json={"filename": "metadata.yaml", "backup_filename": example_backup},
    )
    assert restored.status_code == 200, restored.text
    assert (paths.config / "metadata.yaml").read_bytes() == CLIENT_EXAMPLE.encode()


def test_enabled_file_still_needs_its_default_profile(api: TestClient) -> None:
    document = yaml.safe_load(CLIENT_EXAMPLE)
    document["info"]["config_version"] = "1.0"
    response = upload(api, dump(document))
    assert response.status_code == 422
    assert response.json()["detail"].endswith(
        "Errors: default_profile_id: unknown profile 'default' (line 7)"
    )


OLD_SHIPPED = b"""\
info:
  schema_name: metadata_schema
  schema_version: "0.0.1"
  config_name: Generic Milling Metadata
  config_version: "0.0.1"
  config_date: "2025-01-01T00:00:00+00:00"
default_profile_id: milling
profiles:
  milling:
    id: milling
    name: Milling (Generic)
    pre:
      General:
        person:
          id: person
          label: Operator
          datatype: string
          type: text
          required: optional
"""


def test_startup_warns_about_an_installed_file_the_client_cannot_render(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paths = AppPaths(root=tmp_path, log_file=tmp_path / "logs" / "icodaq.log")
    paths.ensure()
    caplog.set_level(logging.WARNING, logger="icoapi.configuration.service")

    ConfigService(paths, CONFIG_KINDS, SecretRedactor(), EventBus())  # no file: nothing to say
    paths.install_default_config(CONFIG_FILE_NAMES)
    ConfigService(paths, CONFIG_KINDS, SecretRedactor(), EventBus())  # the shipped file is fine
    assert caplog.records == []

    # What an older install still has: it keeps the file it got first.
    (paths.config / "metadata.yaml").write_bytes(OLD_SHIPPED)
    ConfigService(paths, CONFIG_KINDS, SecretRedactor(), EventBus())
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "cannot be used by the web client" in message
    assert "person -> datatype: expected 'text'" in message
    assert "(line 17)" in message
