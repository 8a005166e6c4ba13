"""The one reader of a measurement file: attributes, metadata documents, pictures,
sensors, embedded nodes and row blocks.

:func:`open_measurement` is the only way in: it opens a file with PyTables only
after :mod:`icoapi.hdf5.validation` passed it (cached per file version), so no
file can make PyTables unpickle or read outside itself. Attribute values are
read raw (:func:`icoapi.hdf5.metadata.raw_attribute`), never unpickled.

Every method holds :data:`~icoapi.hdf5.layout.HDF5_LOCK` for its own call only,
so a long read or copy never stalls the measurement writer for more than one step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import tables

from icoapi.hdf5 import metadata as metadata_io
from icoapi.hdf5.layout import (
    ACCELERATION_PATH,
    EMBEDDED_GROUP,
    HDF5_LOCK,
    SENSOR_FLOATS,
    SENSORS_PATH,
)
from icoapi.hdf5.validation import FileVerdicts, UnsafeFileError

__all__ = [
    "AccelerationMissingError",
    "EmbeddedNode",
    "FileBusyError",
    "MeasurementReader",
    "NotReadableError",
    "UnsafeFileError",
    "acceleration_document",
    "open_measurement",
    "upload_metadata",
]

# PyTables sizes a table's I/O buffer by the table size (up to 16 MiB); reads here
# go in bounded steps anyway.
READ_BUFFER = 1024**2
MAX_SENSOR_ROWS = 100
# Non-data columns of /acceleration.
ROW_KEYS = ("counter", "timestamp")


class NotReadableError(Exception):
    """Not a file PyTables can read (message: why)."""


class FileBusyError(Exception):
    """The file is open in an incompatible mode in this process (a running write)."""


class AccelerationMissingError(LookupError):
    """The file has no ``/acceleration`` table."""


class EmbeddedNodeMissingError(LookupError):
    """No embedded file of that name."""


@dataclass(frozen=True)
class EmbeddedNode:
    dataset_name: str
    original_name: str
    mime: str
    size: int


def parse_text(value: Any) -> Any:
    """Attribute text that is JSON becomes the parsed value (``"true"`` → True);
    NaN and Infinity are no JSON and stay text."""
    if not isinstance(value, str):
        return value

    def reject(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return json.loads(value, parse_constant=reject)
    except ValueError:
        return value


class MeasurementReader:
    """A measurement file open with PyTables (made by :func:`open_measurement`)."""

    def __init__(self, h5: tables.File, path: Path) -> None:
        self.h5 = h5
        self.path = path

    # -- the acceleration table ---------------------------------------------------

    def _table(self) -> Any:
        if ACCELERATION_PATH not in self.h5:
            raise AccelerationMissingError("Acceleration data not found in HDF5 file")
        table = self.h5.get_node(ACCELERATION_PATH)
        if not isinstance(table, tables.Table):
            raise NotReadableError("Acceleration data is not a table")
        return table

    def require_acceleration(self) -> None:
        """:raises AccelerationMissingError: no ``/acceleration`` table."""
        with HDF5_LOCK:
            self._table()

    @property
    def nrows(self) -> int:
        with HDF5_LOCK:
            return int(self._table().nrows)

    def data_columns(self) -> list[str]:
        """The value columns of ``/acceleration`` (``x``/``y``/``z``, or others)."""
        with HDF5_LOCK:
            return [c for c in self._table().colnames if c not in ROW_KEYS]

    def rows(self, start: int, stop: int) -> npt.NDArray[Any]:
        """Rows ``start`` to ``stop`` of ``/acceleration`` (a structured array)."""
        with HDF5_LOCK:
            return self._table().read(start, stop)  # type: ignore[no-any-return]

    def attributes(self) -> dict[str, Any]:
        """All attributes of ``/acceleration`` (system ones included) as plain values."""
        with HDF5_LOCK:
            return metadata_io.node_attributes(self._table())

    def attribute(self, name: str) -> Any:
        """One attribute of ``/acceleration`` (None if absent)."""
        with HDF5_LOCK:
            table = self._table()
            if name not in table._v_attrs._v_attrnames:
                return None
            return metadata_io.raw_attribute(table, name)

    # -- metadata, pictures, sensors -------------------------------------------------

    def metadata_text(self, prefix: metadata_io.Prefix) -> str | None:
        """The ``<prefix>_metadata`` JSON text (attribute or, if large, array)."""
        with HDF5_LOCK:
            return metadata_io.read_metadata(self.h5, prefix)

    def pictures(self) -> dict[str, dict[str, dict[str, str]]]:
        with HDF5_LOCK:
            return metadata_io.read_pictures(self.h5)

    def sensors(self) -> list[dict[str, Any]]:
        """Rows of ``/sensors`` as plain values (strings and floats filled in)."""
        with HDF5_LOCK:
            if SENSORS_PATH not in self.h5:
                return []
            table = self.h5.get_node(SENSORS_PATH)
            if not isinstance(table, tables.Table):
                return []
            rows = table.read(0, min(table.nrows, MAX_SENSOR_ROWS))
            names = table.colnames
        sensors = []
        for row in rows:
            values = {column: metadata_io.plain_value(row[column]) for column in names}
            for column in ("name", "sensor_id", "unit", "dimension"):
                values[column] = str(values.get(column) or "")
            for column in SENSOR_FLOATS:
                number = values.get(column)
                values[column] = float(number) if isinstance(number, int | float) else 0.0
            values["sensor_type"] = values.get("sensor_type") or None
            values["channel"] = values.get("channel") or None
            sensors.append(values)
        return sensors

    def write_metadata(self, prefix: metadata_io.Prefix, metadata: dict[str, Any]) -> None:
        """Replace a metadata document (file opened with ``mode="a"``)."""
        with HDF5_LOCK:
            self._table()
            metadata_io.write_metadata(self.h5, prefix, metadata)

    # -- embedded files ---------------------------------------------------------------

    def _embedded_group(self) -> Any:
        node = f"/{EMBEDDED_GROUP}"
        if node not in self.h5:
            return None
        group = self.h5.get_node(node)
        return group if isinstance(group, tables.Group) else None

    def embedded_files(self) -> list[EmbeddedNode]:
        with HDF5_LOCK:
            group = self._embedded_group()
            if group is None:
                return []
            return [_embedded_info(node) for node in group._f_iter_nodes(classname="Leaf")]

    def _embedded_node(self, dataset: str) -> Any:
        """The node of an embedded file in either layout: an array of bytes (what
        this service writes, read in chunks) or a scalar byte string (what other
        ICOtronic tools write)."""
        node_path = f"/{EMBEDDED_GROUP}/{dataset}"
        if not re.fullmatch(r"\w+", dataset) or node_path not in self.h5:
            raise EmbeddedNodeMissingError(dataset)
        node = self.h5.get_node(node_path)
        if not isinstance(node, tables.Array):  # EArray/CArray included
            raise EmbeddedNodeMissingError(dataset)
        if not node.shape and node.dtype.kind != "S":
            raise EmbeddedNodeMissingError(dataset)
        return node

    def embedded_layout(self, dataset: str) -> tuple[EmbeddedNode, int, int, int | None]:
        """Info, rows, byte length and (scalar byte strings) their stored length.

        :raises EmbeddedNodeMissingError: no such embedded file."""
        with HDF5_LOCK:
            node = self._embedded_node(dataset)
            info = _embedded_info(node)
            if not node.shape:
                return info, 1, node.dtype.itemsize, node.dtype.itemsize
            rows = int(node.shape[0])
            length = int(np.prod(node.shape, dtype=np.int64)) * node.dtype.itemsize
            return info, rows, length, None

    def embedded_scalar(self, dataset: str) -> bytes:
        """The content of a scalar byte string node. PyTables strips trailing NUL
        bytes when reading, so the value is padded back to its stored length, then
        cut to the ``size`` attribute where that is given (an empty file is stored
        as one NUL byte)."""
        with HDF5_LOCK:
            node = self._embedded_node(dataset)
            raw = np.asarray(node.read(), dtype=node.dtype).tobytes()
            names = node._v_attrs._v_attrnames
            size = metadata_io.raw_attribute(node, "size") if "size" in names else None
        if isinstance(size, int | float) and not isinstance(size, bool) and 0 <= size <= len(raw):
            raw = raw[: int(size)]
        return raw

    def embedded_bytes(self, dataset: str, start: int, count: int) -> bytes:
        with HDF5_LOCK:
            node = self._embedded_node(dataset)
            return np.ascontiguousarray(node[start : start + count]).tobytes()

    def embedded_names(self) -> set[str]:
        with HDF5_LOCK:
            group = self._embedded_group()
            return set(group._v_children) if group is not None else set()

    def create_embedded(self, dataset: str, expected_size: int, title: str) -> Any:
        """A new empty byte array ``/embedded_files/<dataset>`` (mode ``a``)."""
        with HDF5_LOCK:
            group = self._embedded_group()
            if group is None:
                if f"/{EMBEDDED_GROUP}" in self.h5:
                    raise NotReadableError(f"/{EMBEDDED_GROUP} is not a group.")
                group = self.h5.create_group("/", EMBEDDED_GROUP, title="Embedded files")
            return self.h5.create_earray(
                group,
                dataset,
                tables.UInt8Atom(),
                shape=(0,),
                expectedrows=max(expected_size, 1),
                title=title,
            )

    @staticmethod
    def append_embedded(array: Any, chunk: bytes) -> None:
        with HDF5_LOCK:
            array.append(np.frombuffer(chunk, dtype=np.uint8))

    @staticmethod
    def finish_embedded(array: Any, attributes: dict[str, Any]) -> None:
        with HDF5_LOCK:
            for key, value in attributes.items():
                array.attrs[key] = value
            array.flush()

    def remove_embedded(self, dataset: str) -> None:
        with HDF5_LOCK:
            self._embedded_node(dataset)._f_remove()


def _embedded_info(node: Any) -> EmbeddedNode:
    names = node._v_attrs._v_attrnames

    def attribute(name: str) -> Any:
        return metadata_io.raw_attribute(node, name) if name in names else None

    size, mime, original = attribute("size"), attribute("mime"), attribute("original_name")
    if not isinstance(size, int | float):
        # Scalar byte strings hold one value of ``itemsize`` bytes.
        size = node.nrows if node.shape else node.dtype.itemsize
    return EmbeddedNode(
        dataset_name=node._v_name,
        original_name=original if isinstance(original, str) and original else node._v_name,
        mime=mime if isinstance(mime, str) and mime else "application/octet-stream",
        size=int(size),
    )


@contextmanager
def open_measurement(
    path: Path, verdicts: FileVerdicts | None, mode: Literal["r", "a"] = "r"
) -> Iterator[MeasurementReader]:
    """Open a measurement file that passed the hostile-file check.

    :param verdicts: the cache of checks (None: check now, uncached).
    :raises UnsafeFileError: the file failed the check (it is not opened).
    :raises FileNotFoundError: no such file.
    :raises NotReadableError: PyTables cannot open it.
    :raises FileBusyError: it is open in an incompatible mode in this process."""
    (verdicts or FileVerdicts(capacity=1)).require_safe(path)
    with HDF5_LOCK:
        try:
            h5 = tables.open_file(str(path), mode=mode, IO_BUFFER_SIZE=READ_BUFFER)
        except ValueError as error:
            raise FileBusyError(str(error)) from error
        except FileNotFoundError:
            raise
        except Exception as error:
            raise NotReadableError(f"Failed to open the file: {type(error).__name__}") from error
    try:
        yield MeasurementReader(h5, path)
    finally:
        with HDF5_LOCK:
            if h5.isopen:
                h5.close()


def acceleration_document(
    reader: MeasurementReader, pictures: Literal["merge", "count"], missing_ok: bool = False
) -> dict[str, Any]:
    """The ``/acceleration`` node info: all attributes, JSON text parsed, the
    metadata documents (attribute or array) parsed, and each picture parameter
    merged back into its metadata (``merge``: ``{index: base64}``) or replaced by
    its number of pictures (``count``, what the dataspace sends).

    :raises AccelerationMissingError: no ``/acceleration`` (unless ``missing_ok``:
        then the attributes hold only the metadata documents)."""
    try:
        raw = reader.attributes()
    except AccelerationMissingError:
        if not missing_ok:
            raise
        raw = {}
    attributes = {key: parse_text(value) for key, value in raw.items()}
    for prefix in metadata_io.PREFIXES:
        text = reader.metadata_text(prefix)
        if text is not None:
            attributes[f"{prefix}_metadata"] = parse_text(text)
    for kind, by_key in reader.pictures().items():
        meta = attributes.get(f"{kind}_metadata")
        parameters = meta.get("parameters") if isinstance(meta, dict) else None
        if not isinstance(parameters, dict):
            continue
        for key, values in by_key.items():
            parameters[key] = values if pictures == "merge" else len(values)
    return {
        "name": ACCELERATION_PATH.lstrip("/"),
        "type": "Table",
        "path": ACCELERATION_PATH,
        "attributes": attributes,
    }


def upload_metadata(path: Path, verdicts: FileVerdicts | None = None) -> dict[str, Any]:
    """The ``/acceleration`` node info sent with a file to the dataspace (pictures
    counted), for a file without ``/acceleration`` with empty attributes. This
    replaces ``icoapi.dataspace.service.upload_metadata``.

    :raises UnsafeFileError, NotReadableError, FileBusyError: see :func:`open_measurement`."""
    with open_measurement(path, verdicts) as reader:
        return acceleration_document(reader, pictures="count", missing_ok=True)
