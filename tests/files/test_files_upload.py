"""POST /files/analyze: streamed upload of an HDF5 file into the measurement folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import tables
from fastapi.testclient import TestClient

from tests.files.helpers import API, INVALID_HDF5, write_measurement

URL = f"{API}/files/analyze"


@pytest.fixture
def hdf5_bytes(tmp_path: Path) -> bytes:
    return write_measurement(tmp_path / "source.hdf5", frames=50).read_bytes()


def upload(client: TestClient, filename: str, content: bytes):  # type: ignore[no-untyped-def]
    return client.post(URL, files={"file": (filename, content, "application/x-hdf5")})


def contents(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_upload_and_collisions(client: TestClient, measurements: Path, hdf5_bytes: bytes) -> None:
    response = upload(client, "upload.hdf5", hdf5_bytes)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "upload.hdf5"
    assert (measurements / "upload.hdf5").read_bytes() == hdf5_bytes
    with tables.open_file(measurements / "upload.hdf5") as h5:
        assert h5.root.acceleration.nrows == 50

    assert upload(client, "upload.hdf5", hdf5_bytes).text == "upload__1.hdf5"
    assert upload(client, "upload.hdf5", hdf5_bytes).text == "upload__2.hdf5"
    assert upload(client, "upload__1.hdf5", hdf5_bytes).text == "upload__3.hdf5"
    assert contents(measurements) == [
        "upload.hdf5",
        "upload__1.hdf5",
        "upload__2.hdf5",
        "upload__3.hdf5",
    ]
    listed = [f["name"] for f in client.get(f"{API}/files").json()["files"]]
    assert sorted(listed) == contents(measurements)


@pytest.mark.parametrize(
    ("filename", "stored"),
    [
        ("../../evil.hdf5", "evil.hdf5"),
        ("/etc/evil.hdf5", "evil.hdf5"),
        ("..\\..\\evil.hdf5", "evil.hdf5"),
        ("Messung äöü (1).hdf5", "Messung äöü (1).hdf5"),  # kept, as measurement names
        ("a<b>c?.hdf5", "a_b_c_.hdf5"),
        ("..hidden..name.hdf5", "hidden.name.hdf5"),
    ],
)
def test_upload_names_are_sanitized(
    client: TestClient,
    tmp_path: Path,
    measurements: Path,
    hdf5_bytes: bytes,
    filename: str,
    stored: str,
) -> None:
    response = upload(client, filename, hdf5_bytes)
    assert response.status_code == 200
    assert response.text == stored
    assert contents(measurements) == [stored]
    assert not (tmp_path / "evil.hdf5").exists()


@pytest.mark.parametrize("filename", ["notes.txt", "evil.hdf5.exe", ".hdf5", "...hdf5", "äöü/"])
def test_upload_name_must_be_hdf5(
    client: TestClient, measurements: Path, hdf5_bytes: bytes, filename: str
) -> None:
    response = upload(client, filename, hdf5_bytes)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert contents(measurements) == []


@pytest.mark.parametrize("content", [b"", b"this is not an HDF5 file" * 10])
def test_upload_must_be_valid_hdf5(client: TestClient, measurements: Path, content: bytes) -> None:
    response = upload(client, "fake.hdf5", content)
    assert (response.status_code, response.json()) == (422, INVALID_HDF5)
    assert contents(measurements) == []  # the temporary file is gone too


def test_upload_size_limit(
    client: TestClient, measurements: Path, use_service: Callable[..., None]
) -> None:
    use_service(max_upload_size=1000)
    response = upload(client, "big.hdf5", b"x" * 1001)
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["detail"]
    assert contents(measurements) == []
    at_limit = upload(client, "big.hdf5", b"x" * 1000)  # passes the size check
    assert (at_limit.status_code, at_limit.json()) == (422, INVALID_HDF5)


def test_upload_size_limit_without_content_length(
    client: TestClient, measurements: Path, use_service: Callable[..., None]
) -> None:
    use_service(max_upload_size=100_000)
    boundary = "XyZ"

    def body():  # type: ignore[no-untyped-def]
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.hdf5"\r\n\r\n'
        ).encode()
        for _ in range(40):
            yield b"x" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        URL,
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert contents(measurements) == []


def test_upload_missing_field(client: TestClient, measurements: Path, hdf5_bytes: bytes) -> None:
    expected = {
        "detail": [
            {"type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": None}
        ]
    }
    other_field = client.post(URL, files={"data": ("a.hdf5", hdf5_bytes)})
    assert (other_field.status_code, other_field.json()) == (422, expected)
    not_multipart = client.post(URL, json={"file": "a.hdf5"})
    assert (not_multipart.status_code, not_multipart.json()) == (422, expected)
    assert contents(measurements) == []


def test_malformed_multipart(client: TestClient, measurements: Path) -> None:
    response = client.post(
        URL,
        content=b'--b\r\nContent-Disposition: form-data; name="file"; '
        b'filename="a.hdf5"\r\n\r\nunterminated',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 400
    assert contents(measurements) == []
