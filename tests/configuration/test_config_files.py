"""GET /api/v1/config/{meta,sensors,dataspace} and GET /api/v1/config/backup."""

from __future__ import annotations

from datetime import datetime

import pytest
import yaml
from fastapi.testclient import TestClient

from icoapi.core.paths import AppPaths
from icoapi.core.settings import BUNDLED_CONFIG_DIR
from tests.configuration.yaml_samples import dump, enabled_dataspace, shipped, with_header

CONFIG = "/api/v1/config"


@pytest.mark.parametrize(
    ("endpoint", "filename"), [("meta", "metadata.yaml"), ("sensors", "sensors.yaml")]
)
def test_download_returns_the_file(api: TestClient, endpoint: str, filename: str) -> None:
    response = api.get(f"{CONFIG}/{endpoint}", params={"t": "1700000000000"})
    assert response.status_code == 200
    assert response.content == (BUNDLED_CONFIG_DIR / filename).read_bytes()
    assert response.headers["content-type"] == "application/x-yaml"
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    # What the web client does with GET /config/meta: parse it as YAML.
    assert yaml.safe_load(response.text)["info"]["config_version"]


@pytest.mark.parametrize(
    ("endpoint", "filename"),
    [("meta", "metadata.yaml"), ("sensors", "sensors.yaml"), ("dataspace", "dataspace.yaml")],
)
def test_download_of_missing_file_is_404(
    api: TestClient, paths: AppPaths, endpoint: str, filename: str
) -> None:
    (paths.config / filename).unlink()
    response = api.get(f"{CONFIG}/{endpoint}")
    assert response.status_code == 404
    assert response.json() == {"detail": f"Configuration file {filename} not found."}


def test_dataspace_download_masks_the_declared_secrets(api: TestClient, paths: AppPaths) -> None:
    """What is a credential is declared by the connector's model (SecretStr
    fields), not guessed from key names: Trident's password is one, an extra
    key is kept as written."""
    document = enabled_dataspace("p4ssw0rd-value")
    document["connection"]["comment"] = "line 3"
    (paths.config / "dataspace.yaml").write_bytes(dump(document))
    response = api.get(f"{CONFIG}/dataspace")
    assert response.status_code == 200
    assert "p4ssw0rd-value" not in response.text
    masked = yaml.safe_load(response.text)
    assert masked["connection"]["password"] == "***"
    assert masked["connection"]["comment"] == "line 3"
    assert masked["connection"]["domain"] == "dataspace.example.org"

    s3 = {
        **document,
        "connection": {
            "enabled": True,
            "connector": "s3",
            "bucket": "measurements",
            "access_key_id": "AKID-visible-nowhere",
            "secret_access_key": "s3-secret-value",
        },
    }
    (paths.config / "dataspace.yaml").write_bytes(dump(s3))
    text = api.get(f"{CONFIG}/dataspace").text
    assert "AKID-visible-nowhere" not in text
    assert "s3-secret-value" not in text
    assert yaml.safe_load(text)["connection"]["bucket"] == "measurements"


def test_dataspace_download_of_broken_file_is_422(api: TestClient, paths: AppPaths) -> None:
    (paths.config / "dataspace.yaml").write_text("connection: {password: [x\n", "utf-8")
    response = api.get(f"{CONFIG}/dataspace")
    assert response.status_code == 422
    assert response.json() == {
        "detail": (
            "Configuration file dataspace.yaml is not valid YAML (line 2, column 1: expected ',' "
            "or ']', but got '<stream end>'); it is not shown because it may contain secrets."
        )
    }


def test_listing_of_shipped_files(api: TestClient) -> None:
    response = api.get(f"{CONFIG}/backup")
    assert response.status_code == 200
    files = response.json()["files"]
    assert [(f["name"], f["filename"], f["endpoint"]) for f in files] == [
        ("Metadata Configuration", "metadata.yaml", "meta"),
        ("Sensor Configuration", "sensors.yaml", "sensors"),
        ("Data Space Configuration", "dataspace.yaml", "dataspace"),
    ]
    assert [f["description"] for f in files] == [
        "Configuration file containing your pre- and post-measurement metadata profiles.",
        "Configuration file containing sensor definitions and tool holder configurations.",
        "Configuration file containing your data space connection settings.",
    ]
    for entry, name in zip(files, ("metadata.yaml", "sensors.yaml", "dataspace.yaml"), strict=True):
        assert entry["backup"] == []
        assert entry["error"] is None
        assert datetime.fromisoformat(entry["timestamp"]).tzinfo is not None
        assert entry["info_header"] == shipped(name)["info"]


def test_listing_survives_broken_and_missing_files(api: TestClient, paths: AppPaths) -> None:
    (paths.config / "metadata.yaml").write_text("info: [unclosed\n", "utf-8")
    sensors = shipped("sensors.yaml")
    del sensors["info"]
    (paths.config / "sensors.yaml").write_bytes(dump(sensors))
    (paths.config / "dataspace.yaml").unlink()

    response = api.get(f"{CONFIG}/backup")

    assert response.status_code == 200
    metadata, sensor_file, dataspace = response.json()["files"]
    assert metadata["info_header"] is None
    assert metadata["error"] == (
        "Not valid YAML: line 2, column 1: expected ',' or ']', but got '<stream end>'."
    )
    assert metadata["timestamp"] is not None
    assert sensor_file["info_header"] is None
    assert sensor_file["error"] == "Invalid header: info: required field is missing (line 1)"
    assert dataspace["timestamp"] is None
    assert dataspace["info_header"] is None
    assert dataspace["error"] == "dataspace.yaml does not exist."


def test_listing_of_empty_file_and_bad_header_values(api: TestClient, paths: AppPaths) -> None:
    (paths.config / "metadata.yaml").write_bytes(b"")
    document = with_header(shipped("sensors.yaml"), config_date="not a date")
    (paths.config / "sensors.yaml").write_bytes(dump(document))
    metadata, sensor_file, _ = api.get(f"{CONFIG}/backup").json()["files"]
    assert (metadata["info_header"], metadata["error"]) == (None, "The file is empty.")
    assert sensor_file["info_header"] is None
    assert sensor_file["error"].startswith("Invalid header: info -> config_date: expected date")


def upload(api: TestClient, endpoint: str, content: bytes) -> None:
    response = api.post(
        f"{CONFIG}/{endpoint}", files={"file": ("x.yaml", content, "application/x-yaml")}
    )
    assert response.status_code == 200, response.text


def test_backups_are_listed_newest_first(api: TestClient, paths: AppPaths) -> None:
    for version in ("1", "2", "3"):
        upload(api, "meta", dump(with_header(shipped("metadata.yaml"), config_version=version)))
    (paths.config_backup / "notes.txt").write_text("not a backup", "utf-8")
    (paths.config_backup / "metadata__garbage.yaml").write_text("x", "utf-8")
    (paths.config_backup / "metadata__20000101T000000Z.yaml").write_text("[", "utf-8")

    metadata = api.get(f"{CONFIG}/backup").json()["files"][0]

    versions = [b["info_header"] and b["info_header"]["config_version"] for b in metadata["backup"]]
    assert versions == ["2", "1", "disabled", None]
    names = [b["filename"] for b in metadata["backup"]]
    assert names[-1] == "metadata__20000101T000000Z.yaml"
    assert metadata["backup"][-1]["error"].startswith("Not valid YAML")
    assert metadata["backup"][-1]["timestamp"] == "2000-01-01T00:00:00+00:00"
    # Backups made within one second get a counter before the suffix.
    stamps = {name.split("__")[1][:16] for name in names[:3]}
    for name in names[:3]:
        assert name.startswith("metadata__") and name.endswith(".yaml")
    if len(stamps) == 1:
        stamp = stamps.pop()
        assert names[:3] == [f"metadata__{stamp}{suffix}.yaml" for suffix in ("_2", "_1", "")]


def test_backup_retention(api: TestClient, paths: AppPaths) -> None:
    for number in range(22):
        upload(api, "sensors", dump(with_header(shipped("sensors.yaml"), config_name=f"v{number}")))
    backups = api.get(f"{CONFIG}/backup").json()["files"][1]["backup"]
    assert len(list(paths.config_backup.glob("sensors__*"))) == 20
    # The shipped file and v0 were the oldest and are gone.
    assert [b["info_header"]["config_name"] for b in backups] == [
        f"v{number}" for number in range(20, 0, -1)
    ]


def test_listing_of_oversized_file(api: TestClient, paths: AppPaths) -> None:
    content = dump(shipped("metadata.yaml")) + b"#" * (1024 * 1024)
    (paths.config / "metadata.yaml").write_bytes(content)
    metadata = api.get(f"{CONFIG}/backup").json()["files"][0]
    assert (metadata["info_header"], metadata["error"]) == (None, "The file is larger than 1 MiB.")
