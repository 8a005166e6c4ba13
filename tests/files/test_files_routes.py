"""Files endpoints: list, download, delete, metadata, and name checks on every route."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import tables
from fastapi.testclient import TestClient

from tests.files.helpers import API, FILE_NOT_FOUND, INVALID_HDF5, write_measurement
from tests.support import make_settings

METADATA = {"version": "0.0.1", "profile": "milling", "parameters": {"person": "Ada"}}

# Every route that takes a file name: (method, path with {name}, request options)
NAMED_ROUTES = [
    ("GET", "/files/{name}", {}),
    ("DELETE", "/files/{name}", {}),
    ("GET", "/files/analyze/{name}", {}),
    ("GET", "/files/analyze/meta/{name}", {}),
    ("POST", "/files/pre_meta/{name}", {"json": METADATA}),
    ("POST", "/files/post_meta/{name}", {"json": METADATA}),
    ("POST", "/files/{name}/embedded", {"files": [("files", ("a.txt", b"a", "text/plain"))]}),
    ("GET", "/files/{name}/embedded/hello_txt", {}),
    ("DELETE", "/files/{name}/embedded/hello_txt", {}),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in NAMED_ROUTES]

BAD_NAMES = [
    "%2E%2E",  # ..
    "..%2Foutside.hdf5",  # ../outside.hdf5
    "..%5Coutside.hdf5",  # ..\outside.hdf5
    "%2Fetc%2Foutside.hdf5",  # absolute
    "%252E%252E%252Foutside.hdf5",  # double-encoded: the name holds "%2E%2E%2F"
    "sub%00.hdf5",  # NUL
    "C%3A%5Coutside.hdf5",  # drive letter
    "notes.txt",  # not a measurement file
    ".hidden.hdf5",
    "link.hdf5",  # a symbolic link that leads outside the directory
]


def request(client: TestClient, method: str, path: str, **options: object):  # type: ignore[no-untyped-def]
    return client.request(method, f"{API}{path}", **options)  # type: ignore[arg-type]


@pytest.fixture
def outside(tmp_path: Path, measurements: Path) -> Path:
    """A valid measurement file outside the measurement folder, and a link to it."""
    target = write_measurement(tmp_path / "outside.hdf5", frames=10)
    (measurements / "link.hdf5").symlink_to(target)
    (measurements / "notes.txt").write_text("not a measurement")
    return target


@pytest.mark.parametrize(("method", "path", "options"), NAMED_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_rejected_on_every_route(
    client: TestClient,
    outside: Path,
    method: str,
    path: str,
    options: dict[str, object],
    name: str,
) -> None:
    before = outside.read_bytes()
    response = request(client, method, path.replace("{name}", name), **options)
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("Invalid file name")
    assert outside.read_bytes() == before


@pytest.mark.parametrize(("method", "path", "options"), NAMED_ROUTES, ids=ROUTE_IDS)
def test_missing_file_is_404_on_every_route(
    client: TestClient, measurements: Path, method: str, path: str, options: dict[str, object]
) -> None:
    response = request(client, method, path.replace("{name}", "missing.hdf5"), **options)
    assert response.status_code == 404
    assert response.json() == FILE_NOT_FOUND


def test_link_inside_the_directory_is_allowed(client: TestClient, measurement: Path) -> None:
    (measurement.parent / "alias.hdf5").symlink_to(measurement.name)
    response = request(client, "GET", "/files/alias.hdf5")
    assert response.status_code == 200
    assert response.content == measurement.read_bytes()


def test_list_files(client: TestClient, measurements: Path) -> None:
    response = request(client, "GET", "/files")
    assert response.status_code == 200
    body = response.json()
    assert body["files"] == []
    assert body["directory"] == str(measurements.resolve())
    total, available = body["capacity"]["total"], body["capacity"]["available"]
    assert total >= available > 0
    assert round(total, 2) == total

    older = write_measurement(measurements / "older.hdf5", frames=10)
    newer = write_measurement(measurements / "newer.hdf5", frames=10)
    os.utime(older, (1_700_000_000, 1_700_000_000))
    os.utime(newer, (1_800_000_000, 1_800_000_000))
    (measurements / "notes.txt").write_text("x")
    (measurements / ".upload-123.part").write_bytes(b"upload in progress")
    stale = measurements / ".upload-456.part"
    stale.write_bytes(b"left by a killed process")
    os.utime(stale, (1_700_000_000, 1_700_000_000))
    (measurements / "folder.hdf5").mkdir()

    files = request(client, "GET", "/files").json()["files"]
    assert [f["name"] for f in files] == ["newer.hdf5", "older.hdf5"]
    assert (measurements / ".upload-123.part").exists()
    assert not stale.exists()
    first = files[0]
    assert first["size"] == newer.stat().st_size
    assert first["modified"] == datetime.fromtimestamp(1_800_000_000).isoformat()
    datetime.fromisoformat(first["created"])
    assert first["cloud"] == {
        "status": "not_uploaded",
        "id": None,
        "upload_timestamp": None,
        "queue_state": None,
        "progress": None,
        "detail": None,
    }


def test_download(client: TestClient, measurement: Path) -> None:
    response = request(client, "GET", "/files/measurement.hdf5")
    assert response.status_code == 200
    assert response.content == measurement.read_bytes()
    assert response.headers["content-type"] == "application/x-hdf5"
    assert response.headers["content-disposition"] == 'attachment; filename="measurement.hdf5"'
    assert response.headers["accept-ranges"] == "bytes"

    partial = request(client, "GET", "/files/measurement.hdf5", headers={"Range": "bytes=0-7"})
    assert partial.status_code == 206
    assert partial.content == measurement.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"


def test_delete(client: TestClient, measurement: Path) -> None:
    response = request(client, "DELETE", "/files/measurement.hdf5")
    assert response.status_code == 200
    assert response.json() == {"detail": "File 'measurement.hdf5' deleted successfully"}
    assert not measurement.exists()
    assert request(client, "DELETE", "/files/measurement.hdf5").json() == FILE_NOT_FOUND


def test_delete_of_a_link_keeps_its_target(client: TestClient, measurement: Path) -> None:
    (measurement.parent / "alias.hdf5").symlink_to(measurement.name)
    assert request(client, "DELETE", "/files/alias.hdf5").status_code == 200
    assert measurement.exists()


@pytest.mark.parametrize(
    ("method", "path", "options"),
    [route for route in NAMED_ROUTES if route[0] != "GET" or "embedded" in route[1]]
    + [("GET", "/files/analyze/{name}", {}), ("GET", "/files/analyze/meta/{name}", {})],
)
def test_file_in_use_is_refused(
    client: TestClient,
    measurement: Path,
    use_service: Callable[..., None],
    method: str,
    path: str,
    options: dict[str, object],
) -> None:
    use_service(in_use={"measurement.hdf5"})
    before = measurement.read_bytes()
    response = request(client, method, path.replace("{name}", "measurement.hdf5"), **options)
    assert response.status_code == 409
    assert "running measurement" in response.json()["detail"]
    assert measurement.read_bytes() == before


def test_download_of_a_file_in_use_is_allowed(
    client: TestClient, measurement: Path, use_service: Callable[..., None]
) -> None:
    use_service(in_use={"measurement.hdf5"})
    assert request(client, "GET", "/files/measurement.hdf5").status_code == 200


@pytest.mark.parametrize("prefix", ["pre", "post"])
def test_overwrite_metadata(client: TestClient, measurements: Path, prefix: str) -> None:
    # an empty table and no metadata attribute yet (MyTooliT ICOapi 0.2.1 answers
    # both with a 500)
    path = write_measurement(measurements / "empty.hdf5", frames=0)
    body = {
        "version": "1.0",
        "profile": "milling",
        "parameters": {
            "depth": {"value": 2.5, "unit": "mm"},
            "pressure_pictures": {"0": "cGljdHVyZQ=="},
            "comment": "fine",
        },
    }
    response = request(client, "POST", f"/files/{prefix}_meta/empty.hdf5", json=body)
    assert response.status_code == 200
    assert response.json() is None
    with tables.open_file(path) as h5:
        stored = json.loads(h5.root.acceleration.attrs[f"{prefix}_metadata"])
        assert stored == {
            "version": "1.0",
            "profile": "milling",
            "parameters": {"depth": {"value": 2.5, "unit": "mm"}, "comment": "fine"},
        }
        assert h5.get_node(f"/{prefix}__pressure_pictures").read().tolist() == [b"cGljdHVyZQ=="]

    body["parameters"] = {"comment": "second"}
    assert request(client, "POST", f"/files/{prefix}_meta/empty.hdf5", json=body).status_code == 200
    meta = request(client, "GET", "/files/analyze/meta/empty.hdf5").json()
    parameters = meta["acceleration"]["attributes"][f"{prefix}_metadata"]["parameters"]
    # the picture array stays and is merged back under its metadata
    assert parameters == {"comment": "second", "pressure_pictures": {"0": "cGljdHVyZQ=="}}
    assert meta["pictures"] == {f"{prefix}__pressure_pictures": ["cGljdHVyZQ=="]}


def test_overwrite_metadata_errors(client: TestClient, measurements: Path) -> None:
    (measurements / "garbage.hdf5").write_bytes(b"no hdf5 here")
    with tables.open_file(measurements / "no_table.hdf5", mode="w") as h5:
        h5.create_group("/", "something")

    garbage = request(client, "POST", "/files/pre_meta/garbage.hdf5", json=METADATA)
    assert (garbage.status_code, garbage.json()) == (422, INVALID_HDF5)
    no_table = request(client, "POST", "/files/post_meta/no_table.hdf5", json=METADATA)
    assert no_table.status_code == 404
    assert no_table.json() == {"detail": "Acceleration data not found in HDF5 file"}
    invalid_body = request(client, "POST", "/files/pre_meta/no_table.hdf5", json={"version": 1})
    assert invalid_body.status_code == 422
    assert isinstance(invalid_body.json()["detail"], list)


def test_analyze_meta(client: TestClient, measurements: Path) -> None:
    metadata = {
        "version": "0.0.1",
        "profile": "milling",
        "parameters": {"tool_pictures": {"0": "AAA=", "1": "BBB="}, "person": "Ada"},
    }
    write_measurement(measurements / "m.hdf5", frames=10, metadata=metadata)
    embedded = request(
        client,
        "POST",
        "/files/m.hdf5/embedded",
        files=[("files", ("hello.txt", b"hello!", "text/plain"))],
    )
    assert embedded.status_code == 200

    response = request(client, "GET", "/files/analyze/meta/m.hdf5")
    assert response.status_code == 200
    meta = response.json()
    acceleration = meta["acceleration"]
    assert {k: acceleration[k] for k in ("name", "type", "path")} == {
        "name": "acceleration",
        "type": "Table",
        "path": "/acceleration",
    }
    attributes = acceleration["attributes"]
    assert attributes["conversion"] is True
    assert attributes["adc_reference_voltage"] == 3.3
    assert attributes["CLASS"] == "TABLE"
    assert attributes["measurement_status"] == "completed"
    assert attributes["channel_sensors"]["second"] == {"channel_number": 5, "sensor_id": "temp_01"}
    assert attributes["pre_metadata"] == {
        "version": "0.0.1",
        "profile": "milling",
        "parameters": {"person": "Ada", "tool_pictures": {"0": "AAA=", "1": "BBB="}},
    }
    assert meta["pictures"] == {"pre__tool_pictures": ["AAA=", "BBB="]}
    assert [(s["channel"], s["sensor_id"], s["unit"]) for s in meta["sensors"]] == [
        ("first", "acc100g_01", "g"),
        ("second", "temp_01", "°C"),
        ("third", "photo_01", "-"),
    ]
    assert meta["sensors"][2]["sensor_type"] is None
    assert meta["embedded_files"] == [
        {
            "dataset_name": "hello_txt",
            "original_name": "hello.txt",
            "mime": "text/plain",
            "size": 6,
            "download_path": "/api/v1/files/m.hdf5/embedded/hello_txt",
        }
    ]


def test_analyze_meta_of_a_file_without_acceleration(
    client: TestClient, measurements: Path
) -> None:
    with tables.open_file(measurements / "no_table.hdf5", mode="w") as h5:
        h5.create_group("/", "something")
    (measurements / "garbage.hdf5").write_bytes(b"")
    for path in ("/files/analyze/meta/no_table.hdf5", "/files/analyze/no_table.hdf5"):
        response = request(client, "GET", path)
        assert response.status_code == 404
        assert response.json() == {"detail": "Acceleration data not found in HDF5 file"}
    for path in ("/files/analyze/meta/garbage.hdf5", "/files/analyze/garbage.hdf5"):
        response = request(client, "GET", path)
        assert (response.status_code, response.json()) == (422, INVALID_HDF5)


def test_pytables_1x_files_are_refused(client: TestClient, measurements: Path) -> None:
    path = write_measurement(measurements / "old.hdf5", frames=10)
    with tables.open_file(path, mode="a") as h5:
        h5.root._v_attrs.PYTABLES_FORMAT_VERSION = "1.6"
    response = request(client, "GET", "/files/analyze/meta/old.hdf5")
    assert response.status_code == 422


def test_app_lifespan_wires_the_measurement_folder(tmp_path: Path) -> None:
    from icoapi.api import create_app

    with TestClient(create_app(make_settings(tmp_path))) as client:
        write_measurement(tmp_path / "measurements" / "wired.hdf5", frames=5)
        body = request(client, "GET", "/files").json()
        assert body["directory"] == str((tmp_path / "measurements").resolve())
        assert [f["name"] for f in body["files"]] == ["wired.hdf5"]
