"""PUT /api/v1/config/restore: validation of names, re-validation of content."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from icoapi.core.events import CloudChanged, ConfigChanged, Event
from icoapi.core.paths import AppPaths
from tests.configuration.yaml_samples import dump, enabled_dataspace, shipped, with_header
from tests.support import AppServices

CONFIG = "/api/v1/config"
INVALID = {"detail": "Invalid configuration restore request."}
NOT_FOUND = {"detail": "Requested configuration backup not found."}
RESTORED = {"detail": "Configuration restored successfully."}


def upload(api: TestClient, endpoint: str, content: bytes) -> None:
    response = api.post(
        f"{CONFIG}/{endpoint}", files={"file": ("x.yaml", content, "application/x-yaml")}
    )
    assert response.status_code == 200, response.text


def restore(api: TestClient, filename: str, backup_filename: str) -> Any:
    return api.put(
        f"{CONFIG}/restore", json={"filename": filename, "backup_filename": backup_filename}
    )


def only_backup(paths: AppPaths, stem: str) -> str:
    [backup] = [path.name for path in paths.config_backup.glob(f"{stem}__*")]
    return backup


def test_restore_brings_back_backup_and_keeps_current(api: TestClient, paths: AppPaths) -> None:
    original = (paths.config / "metadata.yaml").read_bytes()
    newer = dump(with_header(shipped("metadata.yaml"), config_version="2"))
    upload(api, "meta", newer)
    backup = only_backup(paths, "metadata")

    response = restore(api, "metadata.yaml", backup)

    assert response.status_code == 200
    assert response.json() == RESTORED
    assert (paths.config / "metadata.yaml").read_bytes() == original
    contents = sorted(path.read_bytes() for path in paths.config_backup.iterdir())
    assert contents == sorted([original, newer])  # the replaced file is a backup now


def test_restore_of_sensors_reaches_sensor_endpoint(api: TestClient, paths: AppPaths) -> None:
    upload(
        api,
        "sensors",
        dump(
            with_header(shipped("sensors.yaml"))
            | {
                "sensors": [dict(shipped("sensors.yaml")["sensors"][0], name="Uploaded")],
                "sensor_configurations": [],
                "default_configuration_id": "",
            }
        ),
    )
    assert api.get("/api/v1/sensor").json()["sensors"][0]["name"] == "Uploaded"
    assert restore(api, "sensors.yaml", only_backup(paths, "sensors")).status_code == 200
    assert api.get("/api/v1/sensor").json()["sensors"][0]["name"] == "Acceleration 100g"


def test_restore_of_dataspace_announces_and_protects_password(
    api: TestClient, paths: AppPaths
) -> None:
    password = "restored-secret-value"
    backup = "dataspace__20200101T000000Z.yaml"
    (paths.config_backup / backup).write_bytes(dump(enabled_dataspace(password)))
    seen: list[Event] = []
    unsubscribe = AppServices(api).events.subscribe(seen.append)
    try:
        assert restore(api, "dataspace.yaml", backup).json() == RESTORED
    finally:
        unsubscribe()
    # The configuration service announces the file once; the dataspace service
    # (which reloads it) may follow with state changes of its own.
    assert seen[:1] == [ConfigChanged("dataspace.yaml")]
    assert all(event == CloudChanged() for event in seen[1:])
    logging.getLogger("icoapi.test").warning("using %s", password)
    assert password not in paths.log_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("filename", ["other.yaml", "../metadata.yaml", "", "backup/x.yaml"])
def test_unknown_file_is_400(api: TestClient, filename: str) -> None:
    response = restore(api, filename, "metadata__20200101T000000Z.yaml")
    assert response.status_code == 400
    assert response.json() == INVALID


@pytest.mark.parametrize(
    "backup_filename",
    [
        "../metadata.yaml",
        "..",
        "..%2Fmetadata.yaml",
        "../../../etc/passwd",
        "/etc/passwd",
        str(Path(__file__).resolve()),
        "..\\metadata__20200101T000000Z.yaml",
        "backup\\metadata__20200101T000000Z.yaml",
        "sub/metadata__20200101T000000Z.yaml",
        "metadata__20200101T000000Z.yaml/..",
        "C:metadata__20200101T000000Z.yaml",
        "sensors__20200101T000000Z.yaml",  # a backup of another file
        "metadata__20201301T000000Z.yaml",  # month 13
        "metadata.yaml",
        "",
    ],
)
def test_malformed_backup_name_is_400(
    api: TestClient, paths: AppPaths, backup_filename: str
) -> None:
    (paths.config_backup / "sensors__20200101T000000Z.yaml").write_bytes(
        dump(shipped("sensors.yaml"))
    )
    before = (paths.config / "metadata.yaml").read_bytes()
    response = restore(api, "metadata.yaml", backup_filename)
    assert response.status_code == 400
    assert response.json() == INVALID
    assert (paths.config / "metadata.yaml").read_bytes() == before


def test_missing_backup_is_404(api: TestClient) -> None:
    response = restore(api, "metadata.yaml", "metadata__20200101T000000Z.yaml")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_symlink_leading_out_of_backup_folder_is_404(
    api: TestClient, paths: AppPaths, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_bytes(dump(with_header(shipped("metadata.yaml"), config_name="Outside")))
    os.symlink(outside, paths.config_backup / "metadata__20200101T000000Z.yaml")
    before = (paths.config / "metadata.yaml").read_bytes()
    response = restore(api, "metadata.yaml", "metadata__20200101T000000Z.yaml")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert (paths.config / "metadata.yaml").read_bytes() == before


def test_backup_folder_entry_that_is_a_directory_is_404(api: TestClient, paths: AppPaths) -> None:
    (paths.config_backup / "metadata__20200101T000000Z.yaml").mkdir()
    response = restore(api, "metadata.yaml", "metadata__20200101T000000Z.yaml")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_backup_is_validated_before_restore(api: TestClient, paths: AppPaths) -> None:
    backup = "metadata__20200101T000000Z.yaml"
    document = shipped("metadata.yaml")
    del document["profiles"]["milling"]["name"]
    (paths.config_backup / backup).write_bytes(dump(document))
    before = (paths.config / "metadata.yaml").read_bytes()

    response = restore(api, "metadata.yaml", backup)

    assert response.status_code == 422
    assert response.json() == {
        "detail": (
            "Provided YAML does not satisfy metadata schema. Errors: profiles -> milling -> name: "
            "required field is missing (line 10)"
        )
    }
    assert (paths.config / "metadata.yaml").read_bytes() == before
    assert [p.name for p in paths.config_backup.iterdir()] == [backup]  # nothing replaced


def test_backup_that_is_not_yaml_is_422(api: TestClient, paths: AppPaths) -> None:
    backup = "sensors__20200101T000000Z_3.yaml"
    (paths.config_backup / backup).write_text("sensors: [\n", "utf-8")
    response = restore(api, "sensors.yaml", backup)
    assert response.status_code == 422
    assert response.json() == {
        "detail": (
            "Provided YAML does not satisfy sensors schema. Errors: not valid YAML: line 2, "
            "column 1: expected the node content, but found '<stream end>'"
        )
    }


def test_missing_body_is_422(api: TestClient) -> None:
    response = api.put(f"{CONFIG}/restore")
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    }
