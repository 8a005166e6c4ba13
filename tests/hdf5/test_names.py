"""The one name policy of measurement files (icoapi.hdf5.names): every name the
service gives is a name the files API accepts and its OpenAPI pattern describes."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icoapi.hdf5.names import (
    MEASUREMENT_FILE_PATTERN,
    InvalidNameError,
    is_measurement_file_name,
    measurement_file_stem,
    upload_file_name,
)

NOW = datetime(2026, 11, 24, 12, 30, 5)
PATTERN = re.compile(MEASUREMENT_FILE_PATTERN)


@given(st.text(max_size=300))
def test_measurement_names_are_accepted(name: str) -> None:
    file_name = f"{measurement_file_stem(name, NOW)}.hdf5"
    assert is_measurement_file_name(file_name)
    assert PATTERN.match(file_name)


@given(st.text(max_size=300))
def test_upload_names_are_accepted_or_refused_clearly(name: str) -> None:
    try:
        stored = upload_file_name(f"{name}.hdf5")
    except InvalidNameError:
        return
    assert is_measurement_file_name(stored)
    assert PATTERN.match(stored)


def test_uploads_and_measurements_follow_the_same_rule() -> None:
    name = 'Fräsen Übung <1>: "a|b"'
    stem = measurement_file_stem(name, NOW).removesuffix("__2026-11-24_12-30-05")
    assert upload_file_name(f"{name}.hdf5") == f"{stem}.hdf5"
    assert upload_file_name("Fräsen Übung (1).hdf5") == "Fräsen Übung (1).hdf5"
    assert measurement_file_stem("Fräsen Übung (1)", NOW).startswith("Fräsen Übung (1)__")
    assert upload_file_name("C:\\Users\\me\\Messung äöü.HDF5") == "Messung äöü.hdf5"
    assert upload_file_name("a?b*c.hdf5") == measurement_file_stem("a?b*c", NOW)[:5] + ".hdf5"


@pytest.mark.parametrize("name", ["\u00a0a\u2003", " . a . "])
def test_whitespace_at_the_ends_goes(name: str) -> None:
    assert upload_file_name(f"{name}.hdf5") == "a.hdf5"
    assert measurement_file_stem(name, NOW) == "a__2026-11-24_12-30-05"


@pytest.mark.parametrize("name", ["x.txt", ".hdf5", "...hdf5", "dir/"])
def test_upload_names_that_cannot_be_stored(name: str) -> None:
    with pytest.raises(InvalidNameError):
        upload_file_name(name)
