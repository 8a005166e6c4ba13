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


def embed_scalar(path: Path, dataset: str, content: bytes, **attributes: object) -> None:
    """An embedded file in the other layout: one scalar byte string (as other
    ICOtronic tools write it), with or without the describing attributes."""
    with tables.open_file(path, "a") as h5:
        group = (
            h5.root.embedded_files
            if "/embedded_files" in h5
            else h5.create_group("/", "embedded_files")
        )
        node = h5.create_array(group, dataset, obj=content)
        for name, value in attributes.items():
            node.attrs[name] = value


def test_scalar_byte_string_download_and_delete(client: TestClient, measurement: Path) -> None:
    # Trailing NUL bytes are content too (PyTables strips them when reading).
    content = b"\x00\x01binary\xff" * 200_000 + b"\x00\x00"
    embed_scalar(
        measurement,
        "report_bin",
        content,
        size=len(content),
        mime="application/pdf",
        original_name="Bericht März.pdf",
    )
    embed(client, "measurement.hdf5", ("array.txt", b"array", "text/plain"))

    meta = client.get(f"{API}/files/analyze/meta/measurement.hdf5").json()
    listed = {f["dataset_name"]: f for f in meta["embedded_files"]}
    assert listed["report_bin"]["size"] == len(content)
    assert listed["report_bin"]["mime"] == "application/pdf"
    assert listed["report_bin"]["original_name"] == "Bericht März.pdf"

    response = client.get(f"{API}/files/measurement.hdf5/embedded/report_bin")
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-length"] == str(len(content))
    assert unquote(response.headers["content-disposition"].split("UTF-8''")[1]) == (
        "Bericht März.pdf"
    )

    deleted = client.delete(f"{API}/files/measurement.hdf5/embedded/report_bin")
    assert deleted.status_code == 200
    assert deleted.json() == {"file_name": "measurement.hdf5", "dataset_name": "report_bin"}
    with tables.open_file(measurement) as h5:
        assert "/embedded_files/report_bin" not in h5
        assert "/embedded_files/array_txt" in h5  # the other layout is untouched
    again = client.get(f"{API}/files/measurement.hdf5/embedded/report_bin")
    assert (again.status_code, again.json()) == (404, FILE_NOT_FOUND)
    array = client.get(f"{API}/files/measurement.hdf5/embedded/array_txt")
    assert (array.status_code, array.content) == (200, b"array")


def test_scalar_byte_string_without_attributes(client: TestClient, measurement: Path) -> None:
    embed_scalar(measurement, "notes", b"line 1\nline 2\x00")
    embed_scalar(measurement, "empty", b"", size=0)  # HDF5 stores one NUL byte
    meta = client.get(f"{API}/files/analyze/meta/measurement.hdf5").json()
    listed = {f["dataset_name"]: f for f in meta["embedded_files"]}
    assert listed["notes"] == {
        "dataset_name": "notes",
        "original_name": "notes",
        "mime": "application/octet-stream",
        "size": 14,
        "download_path": f"{API}/files/measurement.hdf5/embedded/notes",
    }
    notes = client.get(f"{API}/files/measurement.hdf5/embedded/notes")
    assert (notes.status_code, notes.content) == (200, b"line 1\nline 2\x00")
    empty = client.get(f"{API}/files/measurement.hdf5/embedded/empty")
    assert (empty.status_code, empty.content) == (200, b"")


def test_scalar_limits_and_other_scalars(
    client: TestClient, measurement: Path, use_service: Callable[..., None]
) -> None:
    embed_scalar(measurement, "big", b"x" * 11)
    with tables.open_file(measurement, "a") as h5:
        h5.create_array(h5.root.embedded_files, "number", obj=42)  # not a byte string
    use_service(max_embedded_size=10)
    too_big = client.get(f"{API}/files/measurement.hdf5/embedded/big")
    assert too_big.status_code == 422
    assert too_big.json() == {
        "detail": "The embedded file big is stored as one byte string of 11 bytes; at most "
        "10 bytes are read that way."
    }
    number = client.get(f"{API}/files/measurement.hdf5/embedded/number")
    assert (number.status_code, number.json()) == (404, FILE_NOT_FOUND)
    # Deleting does not read the content: the large one can still be removed.
    assert client.delete(f"{API}/files/measurement.hdf5/embedded/big").status_code == 200
