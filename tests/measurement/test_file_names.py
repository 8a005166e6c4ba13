"""Measurement file names: safe in URLs and unique within the same second."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from icoapi.measurement.service import file_stem, unique_path

NOW = datetime(2026, 11, 24, 12, 30, 5)


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("milling", "milling__2026-11-24_12-30-05"),
        ("Fräsen Übung", "Fraesen_Uebung__2026-11-24_12-30-05"),
        ("../../etc/passwd", "etc_passwd__2026-11-24_12-30-05"),
        ("a/b\\c?d#e%f", "a_b_c_d_e_f__2026-11-24_12-30-05"),
        (None, "2026-11-24_12-30-05"),
        ("", "2026-11-24_12-30-05"),
        ("###", "2026-11-24_12-30-05"),
    ],
)
def test_file_stem(name: str | None, stem: str) -> None:
    result = file_stem(name, NOW)
    assert result == stem
    assert re.fullmatch(r"[A-Za-z0-9._-]+", result)


def test_unique_within_the_same_second(tmp_path: Path) -> None:
    stem = file_stem("run", NOW)
    first = unique_path(tmp_path, stem)
    first.write_bytes(b"x")
    second = unique_path(tmp_path, stem)
    second.write_bytes(b"x")
    third = unique_path(tmp_path, stem)
    assert len({first, second, third}) == 3
    assert second.name == f"{stem}__2.hdf5"
    assert third.name == f"{stem}__3.hdf5"
