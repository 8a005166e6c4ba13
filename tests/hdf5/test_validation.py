"""The hostile-file check (icoapi.hdf5.validation): what it refuses, what it lets
through (files of this service, of ICOtronic tools, of PyTables), its cache."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import tables
from icotronic.can.streaming import StreamingConfiguration
from icotronic.can.streaming.data import StreamingData
from icotronic.measurement.storage import Storage

from icoapi.hdf5.reader import open_measurement
from icoapi.hdf5.validation import FileVerdicts, UnsafeFileError, check_file, unsafe_pickle
from tests.files.helpers import write_measurement
from tests.files.hostile import ATTACKS, RunsCommand, build


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attacks_are_refused_without_running(attack: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = build(tmp_path / "evil.hdf5", attack, marker, tmp_path)
    with pytest.raises(UnsafeFileError):
        check_file(path)
    with pytest.raises(UnsafeFileError), open_measurement(path, FileVerdicts()):
        pass
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_code_pickles_of_every_protocol_are_unsafe(protocol: int, tmp_path: Path) -> None:
    assert unsafe_pickle(pickle.dumps(RunsCommand(tmp_path / "m"), protocol=protocol))


@pytest.mark.parametrize("value", [None, [1, 2], {"a": "b"}, "text", 3.5, (1, "x"), True])
def test_pickles_of_plain_data_are_safe(value: object) -> None:
    """(Bytes and sets need an imported callable before protocol 3/4: refused.)"""
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert not unsafe_pickle(pickle.dumps(value, protocol=protocol))


def test_text_is_no_pickle() -> None:
    assert not unsafe_pickle(b"Measurement finished.")
    assert not unsafe_pickle(b"")


def test_files_of_this_service_pass(tmp_path: Path) -> None:
    big = {"version": "1", "profile": "p", "parameters": {"text": "ä" * 80_000}}
    pictures = {"tool_pictures": {"0": "aGVsbG8=", "1": "d29ybGQ="}}
    path = write_measurement(
        tmp_path / "m.hdf5",
        frames=100,
        metadata={"version": "1", "profile": "p", "parameters": pictures},
    )
    with tables.open_file(path, "a") as h5:
        from icoapi.hdf5.metadata import write_metadata

        write_metadata(h5, "post", big)  # too large for an attribute: an array
        group = h5.create_group("/", "embedded_files")
        h5.create_earray(group, "a_txt", tables.UInt8Atom(), shape=(0,)).append(
            np.frombuffer(b"abc", np.uint8)
        )
        h5.root.acceleration.attrs["measurement_status"] = "error: the device stopped."
    check_file(path)


def test_files_of_icotronic_tools_pass(tmp_path: Path) -> None:
    path = tmp_path / "icotronic.hdf5"
    with Storage(path, StreamingConfiguration(first=True, second=True)) as data:
        data.add_streaming_data(StreamingData(values=[1, 2], counter=1, timestamp=1.0))
        data["Sensor_Range"] = "± 100 g₀"
        data["Comment"] = "done."
    check_file(path)


def test_pytables_pickles_of_plain_data_pass_and_are_read_raw(tmp_path: Path) -> None:
    path = tmp_path / "plain.hdf5"
    with tables.open_file(path, "w") as h5:
        table = h5.create_table("/", "acceleration", {"counter": tables.UInt8Col()})
        table.attrs["nothing"] = None  # PyTables pickles these
        table.attrs["numbers"] = [1, 2]
        table.attrs["note"] = b"as bytes."
    check_file(path)
    with open_measurement(path, FileVerdicts()) as reader:
        attributes = reader.attributes()
    assert attributes["nothing"] == "N."  # the raw text, never unpickled
    assert attributes["note"] == "as bytes."


def test_unknown_layouts_are_refused(tmp_path: Path) -> None:
    cases = {
        "vlen": lambda h5: h5.create_dataset("v", (2,), dtype=h5py.vlen_dtype(np.uint8)),
        "reference_attribute": lambda h5: h5.attrs.create(
            "r", h5.create_group("g").ref, dtype=h5py.ref_dtype
        ),
        "committed_type": lambda h5: h5.__setitem__("t", np.dtype("f4")),
        "not_a_table": lambda h5: h5.create_dataset("acceleration", data=np.zeros(3)),
        "pytables_1": lambda h5: h5.attrs.__setitem__("PYTABLES_FORMAT_VERSION", np.bytes_(b"1.6")),
    }
    for name, make in cases.items():
        path = tmp_path / f"{name}.hdf5"
        with h5py.File(path, "w") as h5:
            make(h5)
        with pytest.raises(UnsafeFileError):
            check_file(path)
    (tmp_path / "text.hdf5").write_text("no HDF5 here")
    with pytest.raises(UnsafeFileError, match="not an HDF5 file"):
        check_file(tmp_path / "text.hdf5")


def test_hard_link_cycles_end(tmp_path: Path) -> None:
    path = tmp_path / "cycle.hdf5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("a")
        group["back"] = h5["/"]  # a hard link to the root: a cycle
    check_file(path)


def test_verdicts_are_cached_per_file_version(tmp_path: Path) -> None:
    path = write_measurement(tmp_path / "m.hdf5", frames=10)
    verdicts = FileVerdicts()
    first = verdicts.verdict(path)
    assert first.problem is None
    assert verdicts.verdict(path) is first  # not checked again
    marker = tmp_path / "marker"
    build(tmp_path / "evil.hdf5", "user_attribute", marker, tmp_path)
    os.replace(tmp_path / "evil.hdf5", path)  # same name, other content
    assert verdicts.verdict(path).problem
    with pytest.raises(UnsafeFileError):
        verdicts.require_safe(path)
    assert not marker.exists()


def test_metadata_document_of_a_checked_file(tmp_path: Path) -> None:
    from icoapi.hdf5.reader import acceleration_document, upload_metadata

    pictures = {"tool_pictures": {"0": "aGVsbG8="}}
    path = write_measurement(
        tmp_path / "m.hdf5",
        frames=10,
        metadata={"version": "1", "profile": "p", "parameters": {"n": 1, **pictures}},
    )
    document = upload_metadata(path)
    assert document["attributes"]["pre_metadata"]["parameters"] == {"n": 1, "tool_pictures": 1}
    with open_measurement(path, None) as reader:
        merged = acceleration_document(reader, pictures="merge")
    assert merged["attributes"]["pre_metadata"]["parameters"]["tool_pictures"] == {"0": "aGVsbG8="}
    assert json.dumps(document)  # plain JSON data


def test_pickles_in_variable_length_ascii_strings_are_refused(tmp_path: Path) -> None:
    """PyTables unpickles these too (scalar, ASCII); UTF-8 and arrays it never does."""
    marker = tmp_path / "marker"
    text = pickle.dumps(RunsCommand(marker), protocol=0).decode("ascii")
    path = tmp_path / "vlen.hdf5"
    with h5py.File(path, "w") as h5:
        h5.attrs.create("TITLE", text, dtype=h5py.string_dtype("ascii"))
    with pytest.raises(UnsafeFileError, match="TITLE"):
        check_file(path)
    with h5py.File(path, "w") as h5:
        h5.attrs.create("utf8", text, dtype=h5py.string_dtype("utf-8"))
        h5.attrs.create("array", np.array([text.encode()]))
    check_file(path)
    with tables.open_file(path) as h5:  # PyTables reads both without unpickling
        assert isinstance(h5.root._v_attrs.utf8, str)
        assert isinstance(h5.root._v_attrs.array, np.ndarray)
    assert not marker.exists()
