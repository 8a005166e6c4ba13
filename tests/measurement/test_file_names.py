"""Measurement file names: the user's name kept, safe on every file system and for
the files API, unique within the same second."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from icoapi.files.service import check_measurement_name
from icoapi.measurement.service import file_stem, unique_path

NOW = datetime(2026, 11, 24, 12, 30, 5)


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("milling", "milling__2026-11-24_12-30-05"),
        ("Fräsen Übung", "Fräsen Übung__2026-11-24_12-30-05"),
        ("Test Measurement", "Test Measurement__2026-11-24_12-30-05"),
        ("../../etc/passwd", "_._etc_passwd__2026-11-24_12-30-05"),
        ('a/b\\c?d#e%f<g>h:i"j|k*l', "a_b_c_d#e_f_g_h_i_j_k_l__2026-11-24_12-30-05"),
        ("tab\there", "tab_here__2026-11-24_12-30-05"),
        (" trailing dot. ", "trailing dot__2026-11-24_12-30-05"),
        ("名前", "名前__2026-11-24_12-30-05"),
        (None, "2026-11-24_12-30-05"),
        ("", "2026-11-24_12-30-05"),
        ("...", "2026-11-24_12-30-05"),
    ],
)
def test_file_stem(name: str | None, stem: str) -> None:
    result = file_stem(name, NOW)
    assert result == stem
    check_measurement_name(f"{result}.hdf5")  # reachable through the files API


def test_long_names_are_cut_at_a_character_boundary() -> None:
    result = file_stem("ä" * 300, NOW)
    assert len(result.encode("utf-8")) <= 200
    assert result.startswith("ä" * 80)


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
