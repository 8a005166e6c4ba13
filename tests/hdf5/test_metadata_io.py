"""Metadata and picture arrays in measurement files (icoapi.hdf5.metadata)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import tables

from icoapi.hdf5.metadata import (
    MAX_METADATA_BYTES,
    AccelerationTableMissingError,
    MetadataTooLargeError,
    check_metadata_size,
    node_attributes,
    read_metadata,
    read_pictures,
    write_metadata,
)


@pytest.fixture
def h5(tmp_path: Path) -> tables.File:
    h5file = tables.open_file(tmp_path / "meta.hdf5", mode="w")
    h5file.create_table("/", "acceleration", {"counter": tables.UInt8Col(pos=0)})
    yield h5file
    h5file.close()


def test_write_on_empty_table_without_attribute(h5: tables.File) -> None:
    write_metadata(h5, "post", {"version": "0.1", "profile": "p", "parameters": {"a": 1}})
    stored = json.loads(h5.root.acceleration.attrs["post_metadata"])
    assert stored == {"version": "0.1", "profile": "p", "parameters": {"a": 1}}
    # overwrite
    write_metadata(h5, "post", {"version": "0.2", "profile": "q", "parameters": {}})
    assert json.loads(h5.root.acceleration.attrs["post_metadata"])["version"] == "0.2"


def test_pictures_become_arrays_on_a_copy(h5: tables.File) -> None:
    metadata = {
        "version": "1",
        "profile": "milling",
        "parameters": {
            "tool_pictures": {"1": "Yg==", "0": "YQ=="},
            "depth": {"value": 1.5, "unit": "mm"},
            "picture_count": 3,  # not a mapping: stays in the JSON
            "picture_list": ["x"],
        },
    }
    original = copy.deepcopy(metadata)
    write_metadata(h5, "pre", metadata)
    assert metadata == original
    stored = json.loads(h5.root.acceleration.attrs["pre_metadata"])
    assert stored["parameters"] == {
        "depth": {"value": 1.5, "unit": "mm"},
        "picture_count": 3,
        "picture_list": ["x"],
    }
    array = h5.root.pre__tool_pictures
    assert array.read().tolist() == [b"YQ==", b"Yg=="]  # in index order
    assert read_pictures(h5) == {"pre": {"tool_pictures": {"0": "YQ==", "1": "Yg=="}}, "post": {}}


def test_existing_picture_array_is_replaced(h5: tables.File) -> None:
    write_metadata(h5, "pre", {"parameters": {"p_picture": {"0": "a", "1": "b", "2": "c"}}})
    write_metadata(h5, "pre", {"parameters": {"p_picture": {"0": "longer-text"}}})
    assert h5.root.pre__p_picture.read().tolist() == [b"longer-text"]
    write_metadata(h5, "pre", {"parameters": {"p_picture": {}}})
    assert read_pictures(h5)["pre"] == {"p_picture": {}}


def test_prefix_classification_is_exact(h5: tables.File) -> None:
    # upstream tested "pre" in the name: a post key containing "pre" broke analyze
    write_metadata(h5, "post", {"parameters": {"pressure_picture": {"0": "cG9zdA=="}}})
    write_metadata(h5, "pre", {"parameters": {"post_process_picture": {"0": "cHJl"}}})
    h5.create_array("/", "preview_pictures", obj=np.array([b"x"]))  # no "pre__" prefix
    pictures = read_pictures(h5)
    assert pictures == {
        "pre": {"post_process_picture": {"0": "cHJl"}},
        "post": {"pressure_picture": {"0": "cG9zdA=="}},
    }


def test_unusual_picture_keys_round_trip(h5: tables.File) -> None:
    write_metadata(h5, "pre", {"parameters": {"tool/picture ä": {"a": "x"}}})
    assert "/pre__tool_picture__" in h5
    assert read_pictures(h5)["pre"] == {"tool/picture ä": {"a": "x"}}


def test_upstream_picture_arrays_without_attributes(h5: tables.File) -> None:
    h5.create_array("/", "post__wear_pictures", obj=np.array([b"AA==", b"BB=="]))
    assert read_pictures(h5)["post"] == {"wear_pictures": {"0": "AA==", "1": "BB=="}}


def test_missing_acceleration_table(tmp_path: Path) -> None:
    with tables.open_file(tmp_path / "empty.hdf5", mode="w") as h5file:
        with pytest.raises(AccelerationTableMissingError):
            write_metadata(h5file, "pre", {"parameters": {}})
        with pytest.raises(ValueError):
            write_metadata(h5file, "during", {})  # type: ignore[arg-type]


def test_attributes_are_read_without_unpickling(h5: tables.File) -> None:
    h5.root.acceleration.attrs["obj"] = {"pickled": True}  # PyTables pickles this
    h5.root.acceleration.attrs["number"] = np.float32(1.5)
    h5.root.acceleration.attrs["nan"] = float("nan")
    attributes = node_attributes(h5.root.acceleration)
    assert isinstance(attributes["obj"], str)  # raw text, not the object
    assert attributes["number"] == 1.5
    assert attributes["nan"] is None
    assert attributes["CLASS"] == "TABLE"


def test_metadata_of_any_size_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "big.hdf5"
    big = {"version": "1", "profile": "p", "parameters": {"notes": "ä" * 600_000}}
    with tables.open_file(path, mode="w") as h5file:
        h5file.create_table("/", "acceleration", {"counter": tables.UInt8Col(pos=0)})
        write_metadata(h5file, "pre", big)
    with tables.open_file(path, mode="r") as h5file:  # plain PyTables reads it
        assert json.loads(read_metadata(h5file, "pre") or "") == big
        assert "pre_metadata" not in h5file.root.acceleration.attrs._v_attrnames
        assert h5file.root.pre_metadata.attrs["content"] == "application/json"
        assert read_pictures(h5file) == {"pre": {}, "post": {}}
    small = {"version": "1", "profile": "p", "parameters": {"a": 1}}
    with tables.open_file(path, mode="a") as h5file:
        write_metadata(h5file, "pre", small)  # replaces the array with an attribute
    with tables.open_file(path, mode="r") as h5file:
        assert "/pre_metadata" not in h5file
        assert json.loads(read_metadata(h5file, "pre") or "") == small
        assert read_metadata(h5file, "post") is None


def test_size_limit() -> None:
    check_metadata_size({"parameters": {"a": "x" * (MAX_METADATA_BYTES - 100)}})
    with pytest.raises(MetadataTooLargeError) as caught:
        check_metadata_size({"parameters": {"a": "x" * MAX_METADATA_BYTES}})
    assert caught.value.status_code == 413
