"""The shared file-name check and Content-Disposition header of icoapi.core."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from icoapi.core.http import content_disposition
from icoapi.core.names import is_plain_file_name


@pytest.mark.parametrize(
    "name", ["measurement.hdf5", "icodaq.log.3", "metadata__20250101T120000Z.yaml", "ä b.txt"]
)
def test_plain_names_pass(name: str) -> None:
    assert is_plain_file_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "..",
        "../x.hdf5",
        "a/b.hdf5",
        "a\\b.hdf5",
        "C:x.hdf5",
        "a%2Fb.hdf5",
        "a%5cb.hdf5",
        "a%00.hdf5",
        "a\0b",
        "a\nb",
        ".hidden",
        " padded ",
        "x" * 256,
    ],
)
def test_names_that_could_leave_the_folder_fail(name: str) -> None:
    assert not is_plain_file_name(name)


@pytest.mark.parametrize(
    ("name", "ascii_name", "fallback"),
    [
        ("plain.txt", None, "plain.txt"),
        ('prüfung "1";.log', None, "pr_fung _1__.log"),
        ("Prüfung.txt", "Pruefung.txt", "Pruefung.txt"),
        ("日本語.pdf", None, "download.pdf"),
        ("日本語", None, "download"),
    ],
)
def test_content_disposition(name: str, ascii_name: str | None, fallback: str) -> None:
    header = content_disposition(name, ascii_name)
    plain, star = header.split("; filename*=UTF-8''")
    assert plain == f'attachment; filename="{fallback}"'
    assert unquote(star, encoding="utf-8") == name
    header.encode("latin-1")  # fits the header's character set
