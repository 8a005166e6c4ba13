"""POST /api/v1/config/{meta,sensors,dataspace}: the upload pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from icoapi.api import create_app
from icoapi.core.events import ConfigChanged, Event
from icoapi.core.paths import AppPaths
from tests.configuration.yaml_samples import dump, enabled_dataspace, shipped, with_header
from tests.support import AppServices, make_settings

CONFIG = "/api/v1/config"
ENDPOINTS = {"meta": "metadata.yaml", "sensors": "sensors.yaml", "dataspace": "dataspace.yaml"}


def upload(
    api: TestClient, endpoint: str, content: bytes, media_type: str = "application/x-yaml"
) -> Any:
    return api.post(
        f"{CONFIG}/{endpoint}", files={"file": (ENDPOINTS[endpoint], content, media_type)}
    )


def leftover_temporary_files(paths: AppPaths) -> list[str]:
    return [p.name for p in paths.config.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_upload_replaces_file_and_keeps_backup(
    api: TestClient, paths: AppPaths, endpoint: str
) -> None:
    filename = ENDPOINTS[endpoint]
    old = (paths.config / filename).read_bytes()
    document = with_header(shipped(filename), config_name="Uploaded", config_version="9.9")
    content = b"# a comment the file keeps\n" + dump(document)

    response = upload(api, endpoint, content)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "schema_name": document["info"]["schema_name"],
        "schema_version": document["info"]["schema_version"],
        "config_name": "Uploaded",
        "config_version": "9.9",
        "config_date": document["info"]["config_date"],
    }
    assert (paths.config / filename).read_bytes() == content  # raw bytes, comments kept
    [backup] = list(paths.config_backup.iterdir())
    assert backup.read_bytes() == old
    stem = filename.removesuffix(".yaml")
    assert backup.name.startswith(f"{stem}__") and backup.name.endswith("Z.yaml")
    assert leftover_temporary_files(paths) == []


@pytest.mark.parametrize(
    "media_type",
    [
        "text/yaml",
        "application/yaml",
        "text/x-yaml",
        "text/plain; charset=utf-8",
        "application/octet-stream",
        "APPLICATION/X-YAML",
    ],
)
def test_allowed_media_types(api: TestClient, paths: AppPaths, media_type: str) -> None:
    document = with_header(shipped("metadata.yaml"), config_name=f"Sent as {media_type}")
    content = dump(document)
    response = upload(api, "meta", content, media_type)
    assert response.status_code == 200, response.text
    assert response.json()["config_name"] == f"Sent as {media_type}"
    assert (paths.config / "metadata.yaml").read_bytes() == content
    assert len(list(paths.config_backup.iterdir())) == 1


def test_other_media_type_is_415(api: TestClient, paths: AppPaths) -> None:
    before = (paths.config / "metadata.yaml").read_bytes()
    response = upload(api, "meta", dump(shipped("metadata.yaml")), "image/png")
    assert response.status_code == 415
    assert response.json() == {"detail": "Unsupported media type for configuration upload."}
    assert (paths.config / "metadata.yaml").read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"  \n\t\n",
        b"key: [unclosed\n",
        b"\xff\xfe\x00binary\x00",
        b"a: b\n---\nc: d\n",
        b"[" * 5000 + b"]" * 5000,
        b"x: !!python/object:os.system {}\n",
    ],
    ids=["zero-bytes", "whitespace", "syntax", "binary", "two-documents", "deep", "python-tag"],
)
def test_unparsable_payload_is_400(api: TestClient, paths: AppPaths, content: bytes) -> None:
    before = (paths.config / "sensors.yaml").read_bytes()
    response = upload(api, "sensors", content)
    assert response.status_code == 400
    assert response.json() == {"detail": "Failed to parse YAML payload."}
    assert (paths.config / "sensors.yaml").read_bytes() == before
    assert list(paths.config_backup.iterdir()) == []


def test_alias_bomb_is_400(api: TestClient) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    response = upload(api, "meta", "\n".join(lines).encode())
    assert response.status_code == 400
    assert response.json() == {"detail": "Failed to parse YAML payload."}


def test_comment_only_document_is_422(api: TestClient) -> None:
    response = upload(api, "meta", b"# nothing but a comment\n")
    assert response.status_code == 422
    assert response.json() == {
        "detail": "Provided YAML does not satisfy metadata schema. "
        "Errors: YAML document must not be empty"
    }


def test_huge_file_is_413(api: TestClient, paths: AppPaths) -> None:
    content = dump(shipped("sensors.yaml")) + b"#" * (1024 * 1024)
    response = upload(api, "sensors", content)
    assert response.status_code == 413
    assert response.json() == {"detail": "Configuration file is too large (the limit is 1 MiB)."}
    assert list(paths.config_backup.iterdir()) == []


def test_missing_file_field_is_422(api: TestClient) -> None:
    response = api.post(f"{CONFIG}/meta", data={"other": "x"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "file"]


def test_root_must_be_a_mapping(api: TestClient) -> None:
    response = upload(api, "dataspace", b"- just\n- a list\n")
    assert response.status_code == 422
    assert response.json() == {
        "detail": "Provided YAML does not satisfy dataspace schema. "
        "Errors: Root document must be a mapping (line 1)"
    }


SENSOR_ERRORS = """\
info:
  schema_name: sensors_schema
  schema_version: 1
  config_name: ""
  config_version: "1"
  config_date: yesterday
sensors:
  - name: A
    sensor_id: a
    unit: g
    dimension: D
    phys_min: -1
    phys_max: "1"
    volt_min: 0
    volt_max: 3
  - name: B
    sensor_id: a
    unit: g
    dimension: D
    phys_min: 0
    phys_max: 1
    volt_min: 1
    volt_max: 1
    colour: red
  - name: C
sensor_configurations:
  - configuration_id: c
    configuration_name: C
    channels:
      1: {sensor_id: zzz}
      x: {sensor_id: a}
      2: {sensor_id: a}
      2: {sensor_id: a}
default_configuration_id: nope
"""


def test_every_sensors_schema_error_is_listed(api: TestClient, paths: AppPaths) -> None:
    before = (paths.config / "sensors.yaml").read_bytes()
    response = upload(api, "sensors", SENSOR_ERRORS.encode())
    assert response.status_code == 422
    errors = [
        "info -> schema_version: expected non-empty string (line 3)",
        "info -> config_name: expected non-empty string (line 4)",
        "info -> config_date: expected date in ISO 8601 format, e.g. "
        "'2025-01-31T12:00:00+00:00' (line 6)",
        "sensors -> 0 -> phys_max: expected a number (line 13)",
        "sensors -> 1 -> sensor_id: duplicate sensor_id 'a' (line 17)",
        "sensors -> 1 -> volt_max: volt_max must differ from volt_min (line 23)",
        "sensors -> 1 -> colour: unknown key (line 24)",
        *(
            f"sensors -> 2 -> {key}: required field is missing (line 25)"
            for key in (
                "sensor_id",
                "unit",
                "dimension",
                "phys_min",
                "phys_max",
                "volt_min",
                "volt_max",
            )
        ),
        "sensor_configurations -> 0 -> channels -> 1 -> sensor_id: unknown sensor_id 'zzz' "
        "(line 30)",
        "sensor_configurations -> 0 -> channels -> x: invalid key: expected an integer (line 31)",
        "sensor_configurations -> 0 -> channels -> 2: duplicate key (line 33)",
        "default_configuration_id: unknown configuration 'nope' (line 34)",
    ]
    detail = response.json()["detail"]
    assert detail.startswith("Provided YAML does not satisfy sensors schema. Errors: ")
    assert sorted(detail.split("Errors: ", 1)[1].split("; ")) == sorted(errors)
    assert (paths.config / "sensors.yaml").read_bytes() == before
    assert leftover_temporary_files(paths) == []


METADATA_ERRORS = """\
info:
  schema_name: metadata_schema
  schema_version: "0.0.1"
  config_name: Broken
  config_version: "1"
  config_date: "2025-01-01"
default_profile_id: drilling
profiles:
  milling:
    id: milling
    pre:
      General:
        person:
          id: person
          label: Operator
          datatype: text
          required: optional
        nested:
          deeper:
            field: 3
        choice:
          id: choice
          label: Choice
          datatype: dropdown
          type: default
          required: optional
          options: not-a-list
      Other: just text
    post: [1, 2]
"""


def test_every_metadata_schema_error_is_listed(api: TestClient) -> None:
    response = upload(api, "meta", METADATA_ERRORS.encode())
    assert response.status_code == 422
    assert response.json() == {
        "detail": (
            "Provided YAML does not satisfy metadata schema. Errors: "
            "profiles -> milling -> name: required field is missing (line 10); "
            "profiles -> milling -> pre -> General -> person -> type: required field is missing "
            "(line 14); "
            "profiles -> milling -> pre -> General -> nested -> deeper -> field: expected mapping "
            "for field definition or nested section (line 20); "
            "profiles -> milling -> pre -> General -> choice -> options: expected list (line 27); "
            "profiles -> milling -> pre -> Other: expected mapping (line 28); "
            "profiles -> milling -> post: expected mapping (line 29)"
        )
    }


def test_metadata_default_profile_must_exist(api: TestClient) -> None:
    enabled = with_header(shipped("metadata.yaml"), config_version="1.0")
    document = {**enabled, "default_profile_id": "drilling"}
    response = upload(api, "meta", dump(document))
    assert response.status_code == 422
    assert response.json()["detail"].endswith(
        "Errors: default_profile_id: unknown profile 'drilling' (line 7)"
    )


def test_metadata_profiles_must_not_be_empty(api: TestClient) -> None:
    document = {**shipped("metadata.yaml"), "profiles": {}}
    response = upload(api, "meta", dump(document))
    assert response.status_code == 422
    assert "profiles: expected at least one entry" in response.json()["detail"]


def test_header_must_be_a_mapping(api: TestClient) -> None:
    document = {**shipped("metadata.yaml"), "info": "v1"}
    response = upload(api, "meta", dump(document))
    assert response.status_code == 422
    assert response.json() == {
        "detail": "Provided YAML does not satisfy metadata schema. "
        "Errors: info: expected mapping (line 1)"
    }


DATASPACE_ERRORS = """\
info:
  schema_name: dataspace_schema
  schema_version: "1.0.0"
  config_name: x
  config_version: "1"
  config_date: "2025-01-01T00:00:00+00:00"
connection:
  enabled: true
  connector: ftp
  protocol: https
  domain: /example.org/
  base_path: api
  username: ""
  password: 12345
"""


def test_every_dataspace_schema_error_is_listed(api: TestClient) -> None:
    response = upload(api, "dataspace", DATASPACE_ERRORS.encode())
    assert response.status_code == 422
    assert response.json() == {
        "detail": (
            "Provided YAML does not satisfy dataspace schema. Errors: "
            "connection -> bucket: required field is missing (line 8); "
            "connection -> connector: expected 'trident', 's3' or 'folder' (line 9); "
            "connection -> domain: must not start or end with '/' (line 11); "
            "connection -> username: expected non-empty string (line 13); "
            "connection -> password: expected non-empty string (line 14)"
        )
    }


def test_dataspace_enabled_must_be_boolean(api: TestClient) -> None:
    document = shipped("dataspace.yaml")
    document["connection"]["enabled"] = "yes please"
    response = upload(api, "dataspace", dump(document))
    assert response.status_code == 422
    assert response.json()["detail"].endswith(
        "Errors: connection -> enabled: expected true or false (line 8)"
    )


def test_uploads_announce_the_changed_file(api: TestClient) -> None:
    seen: list[Event] = []
    unsubscribe = AppServices(api).events.subscribe(seen.append)
    try:
        assert upload(api, "meta", dump(shipped("metadata.yaml"))).status_code == 200
        assert seen == [ConfigChanged("metadata.yaml")]
        response = upload(api, "dataspace", dump(enabled_dataspace("x-secret-1")))
        assert response.status_code == 200, response.text
        # The configuration service's announcement; the dataspace service, which
        # reloads the file, may follow with state changes of its own.
        assert seen[1:2] == [ConfigChanged("dataspace.yaml")]
    finally:
        unsubscribe()


def test_dataspace_get_masks_password(api: TestClient) -> None:
    assert upload(api, "dataspace", dump(enabled_dataspace("Hunter2-Secret"))).status_code == 200
    response = api.get(f"{CONFIG}/dataspace")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-yaml"
    assert "Hunter2-Secret" not in response.text
    document = yaml.safe_load(response.text)
    assert document["connection"]["password"] == "***"
    assert document["connection"]["username"] == "operator"
    assert document["info"]["config_name"] == "Enabled Dataspace"


def test_uploaded_password_never_reaches_log_file(api: TestClient, paths: AppPaths) -> None:
    password = "Pa55-word-only-here"
    content = dump(enabled_dataspace(password))
    assert upload(api, "dataspace", content).status_code == 200
    # Everything that might print it: a careless library, a failed upload that
    # echoes the payload, a restore, the masked download.
    import logging

    logging.getLogger("icoapi.test").warning("logging in with password=%s", password)
    logging.getLogger("icoapi.test").debug("payload %r", content)
    assert (
        upload(api, "dataspace", content.replace(b"enabled: true", b"enabled: 3")).status_code
        == 422
    )
    api.get(f"{CONFIG}/dataspace")
    text = Path(paths.log_file).read_text(encoding="utf-8")
    assert password not in text
    assert "logging in with password=***" in text


def test_announced_oversized_body_is_refused_before_reading(tmp_path: Path) -> None:
    # A separate app: the module's shared one keeps its own data folder.
    with TestClient(create_app(make_settings(tmp_path / "data"))) as http:
        response = http.post(
            "/api/v1/config/sensors",
            content=b"x" * (3 * 1024 * 1024),
            headers={"content-type": "multipart/form-data; boundary=abc"},
        )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
