"""Embedded files: POST/GET/DELETE /files/{name}/embedded[/{dataset}]."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest
import tables
from fastapi.testclient import TestClient

from tests.files.helpers import API, FILE_NOT_FOUND, INVALID_HDF5


def embed(client: TestClient, name: str, *files: tuple[str, bytes, str | None]):  # type: ignore[no-untyped-def]
    parts = [
        ("files", (filename, content) if mime is None else (filename, content, mime))
        for filename, content, mime in files
    ]
    return client.post(f"{API}/files/{name}/embedded", files=parts)


def test_upload_embedded_file(client: TestClient, measurement: Path) -> None:
    response = embed(client, "measurement.hdf5", ("hello.txt", b"hello\n", "text/plain"))
    assert response.status_code == 200
    assert response.json() == [
        {
            "dataset_name": "hello_txt",
            "original_name": "hello.txt",
            "mime": "text/plain",
            "size": 6,
        },
    ]
    with tables.open_file(measurement) as h5:
        node = h5.root.embedded_files.hello_txt
        assert node.dtype == "uint8"
        assert node.read().tobytes() == b"hello\n"
        assert node.attrs["size"] == 6
        assert node.attrs["mime"] == "text/plain"
        assert node.attrs["original_name"] == "hello.txt"
        assert h5.root.acceleration.nrows == 2500  # the measurement is untouched


def test_duplicate_and_multiple(client: TestClient, measurement: Path) -> None:
    embed(client, "measurement.hdf5", ("hello.txt", b"1", "text/plain"))
    response = embed(
        client,
        "measurement.hdf5",
        ("hello.txt", b"hello", "text/plain"),
        ("world.bin", b"\x00\x01", "application/octet-stream"),
        ("2024 Bericht.pdf", b"%PDF", "application/pdf"),
        ("日本.txt", b"", "text/plain"),
    )
    assert response.status_code == 200
    assert [(f["dataset_name"], f["size"], f["mime"]) for f in response.json()] == [
        ("hello_txt__1", 5, "text/plain"),
        ("world_bin", 2, "application/octet-stream"),
        ("file__2024_Bericht_pdf", 4, "application/pdf"),
        ("txt", 0, "text/plain"),
    ]
    meta = client.get(f"{API}/files/analyze/meta/measurement.hdf5").json()
    assert [f["dataset_name"] for f in meta["embedded_files"]] == [
        "file__2024_Bericht_pdf",
        "hello_txt",
        "hello_txt__1",
        "txt",
        "world_bin",
    ]
    empty = client.get(f"{API}/files/measurement.hdf5/embedded/txt")
    assert (empty.status_code, empty.content) == (200, b"")


def test_upload_errors(client: TestClient, measurements: Path, measurement: Path) -> None:
    missing = embed(client, "missing.hdf5", ("a.txt", b"a", "text/plain"))
    assert (missing.status_code, missing.json()) == (404, FILE_NOT_FOUND)
    (measurements / "garbage.hdf5").write_bytes(b"garbage")
    invalid = embed(client, "garbage.hdf5", ("a.txt", b"a", "text/plain"))
    assert (invalid.status_code, invalid.json()) == (422, INVALID_HDF5)
    no_files = client.post(f"{API}/files/measurement.hdf5/embedded", files={"other": b"x"})
    assert no_files.status_code == 422


def test_size_and_count_limits(
    client: TestClient, measurement: Path, measurements: Path, use_service: Callable[..., None]
) -> None:
    use_service(max_embedded_size=10, max_embedded_files=2)
    too_big = embed(client, "measurement.hdf5", ("a.txt", b"x" * 11, "text/plain"))
    assert too_big.status_code == 413
    too_many = embed(
        client, "measurement.hdf5", *[(f"{i}.txt", b"x", "text/plain") for i in range(3)]
    )
    assert too_many.status_code == 400
    with tables.open_file(measurement) as h5:
        assert "/embedded_files" not in h5
    assert sorted(p.name for p in measurements.iterdir()) == ["measurement.hdf5"]


def test_download(client: TestClient, measurement: Path) -> None:
    embed(client, "measurement.hdf5", ("hello.txt", b"hello\n", "text/plain"))
    response = client.get(f"{API}/files/measurement.hdf5/embedded/hello_txt")
    assert response.status_code == 200
    assert response.content == b"hello\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"hello.txt\"; filename*=UTF-8''hello.txt"
    )
    assert response.headers["content-length"] == "6"


@pytest.mark.parametrize(
    ("original", "fallback"),
    [
        ("Prüfbericht №1 (測定).txt", "Pruefbericht No1 ().txt"),
        ("日本語.pdf", "download.pdf"),
        ("semi;colon.txt", "semi_colon.txt"),
    ],
)
def test_download_with_non_latin1_name(
    client: TestClient, measurement: Path, original: str, fallback: str
) -> None:
    content = bytes(range(256)) * 5000  # more than one read chunk
    created = embed(client, "measurement.hdf5", (original, content, "application/pdf"))
    dataset = created.json()[0]["dataset_name"]
    response = client.get(f"{API}/files/measurement.hdf5/embedded/{dataset}")
    assert response.status_code == 200
    assert response.content == content
    disposition = response.headers["content-disposition"]
    plain, star = disposition.split("; filename*=UTF-8''")
    assert plain == f'attachment; filename="{fallback}"'
    assert unquote(star, encoding="utf-8") == original


def test_download_errors(client: TestClient, measurements: Path, measurement: Path) -> None:
    for dataset in ("missing", "%2E%2E", "hello%20txt"):
        response = client.get(f"{API}/files/measurement.hdf5/embedded/{dataset}")
        assert (response.status_code, response.json()) == (404, FILE_NOT_FOUND), dataset
    (measurements / "garbage.hdf5").write_bytes(b"garbage")
    invalid = client.get(f"{API}/files/garbage.hdf5/embedded/hello_txt")
    assert (invalid.status_code, invalid.json()) == (422, INVALID_HDF5)


def test_delete(client: TestClient, measurements: Path, measurement: Path) -> None:
    embed(client, "measurement.hdf5", ("hello.txt", b"hello", "text/plain"))
    response = client.delete(f"{API}/files/measurement.hdf5/embedded/hello_txt")
    assert response.status_code == 200
    assert response.json() == {"file_name": "measurement.hdf5", "dataset_name": "hello_txt"}
    with tables.open_file(measurement) as h5:
        assert "/embedded_files/hello_txt" not in h5
    again = client.delete(f"{API}/files/measurement.hdf5/embedded/hello_txt")
    assert (again.status_code, again.json()) == (404, FILE_NOT_FOUND)
    (measurements / "garbage.hdf5").write_bytes(b"garbage")
    invalid = client.delete(f"{API}/files/garbage.hdf5/embedded/hello_txt")
    assert (invalid.status_code, invalid.json()) == (422, INVALID_HDF5)


def test_content_disposition_escapes_quotes_and_backslashes() -> None:
    from icoapi.files.router import content_disposition

    header = content_disposition('say "hi"\\now.txt')
    assert header == (
        "attachment; filename=\"say _hi__now.txt\"; filename*=UTF-8''say%20%22hi%22%5Cnow.txt"
    )
    header.encode("latin-1")
