"""Pre- and post-measurement metadata in a measurement file.

Layout (compatible with upstream ICOapi files):

* attribute ``<prefix>_metadata`` on ``/acceleration``: JSON
  ``{"version", "profile", "parameters"}``. JSON larger than an HDF5 attribute
  can hold (:data:`MAX_ATTRIBUTE_BYTES`) goes into the root array
  ``/<prefix>_metadata`` instead (uint8, the UTF-8 JSON text, attribute
  ``content = "application/json"``), and the attribute is removed;
  :func:`read_metadata` reads either form. Metadata larger than
  :data:`MAX_METADATA_BYTES` as JSON is refused (:class:`MetadataTooLargeError`);
* pictures: a parameter whose key contains ``picture`` and whose value maps an
  index to a base64 string is stored as the root array ``/<prefix>__<key>`` (a
  1-D fixed-length byte-string array) and left out of the JSON. The array has the
  attributes ``parameter`` (the original key) and ``indices`` (JSON list of the
  original index keys), so reading gives back exactly what was written.

Reading never unpickles attribute values (PyTables would, for values that look
like pickles), because files can be uploaded by clients.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tables

from icoapi.core.errors import IcoapiError
from icoapi.hdf5.layout import ACCELERATION_PATH, HDF5_LOCK

Prefix = Literal["pre", "post"]
MAX_METADATA_BYTES = 7 * 1024 * 1024
"""Largest metadata document (UTF-8 JSON, pictures included) a file takes. Below
the request body limit (``ICOAPI_MAX_BODY_BYTES``, 8 MiB by default), so that a
document within this limit also fits a request with the instructions around it."""
MAX_ATTRIBUTE_BYTES = 60 * 1024
"""Larger JSON goes into an array: HDF5 attributes hold at most 64 KiB."""
PREFIXES: tuple[Prefix, ...] = ("pre", "post")
ACCELERATION = ACCELERATION_PATH


class AccelerationTableMissingError(LookupError):
    """The file has no ``/acceleration`` table to attach metadata to."""


class MetadataTooLargeError(IcoapiError):
    status_code = 413
    default_detail = (
        f"Metadata too large: at most {MAX_METADATA_BYTES // (1024 * 1024)} MiB "
        "of JSON (pictures included)."
    )


def json_document(metadata: Any) -> Any:
    """``metadata`` as plain JSON data."""
    return json.loads(json.dumps(metadata, default=_json_default, ensure_ascii=False))


def check_metadata_size(metadata: Any) -> None:
    """:raises MetadataTooLargeError: if ``metadata`` as JSON exceeds the limit."""
    size = len(json.dumps(metadata, default=_json_default, ensure_ascii=False).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise MetadataTooLargeError(
            f"Metadata too large: {size} bytes of JSON, at most {MAX_METADATA_BYTES} "
            "bytes (pictures included)."
        )


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _picture_values(value: Any) -> dict[str, str] | None:
    """The ``{index: base64}`` mapping of a picture parameter, or None if the value
    is not such a mapping (it then stays in the JSON)."""
    if not isinstance(value, Mapping):
        return None
    if not all(isinstance(item, str | bytes) for item in value.values()):
        return None
    items = {
        str(index): item.decode("utf-8") if isinstance(item, bytes) else item
        for index, item in value.items()
    }
    if all(index.isdigit() for index in items):
        return dict(sorted(items.items(), key=lambda pair: int(pair[0])))
    return items


def picture_node_name(prefix: Prefix, key: str) -> str:
    """Root node name of a picture parameter (characters outside ``[A-Za-z0-9_]``
    become ``_``; the original key is kept in the node's ``parameter`` attribute)."""
    return f"{prefix}__{re.sub(r'[^A-Za-z0-9_]', '_', key)}"


def write_metadata(h5file: tables.File, prefix: Prefix, metadata: Mapping[str, Any]) -> None:
    """Store ``metadata`` (``{version, profile, parameters}``) as ``<prefix>_metadata``.

    Overwrites earlier metadata of the same prefix; works on an empty table and
    when the attribute does not exist yet. ``metadata`` itself is not changed.

    :raises ValueError: for an unknown prefix.
    :raises AccelerationTableMissingError: if the file has no ``/acceleration``."""
    if prefix not in PREFIXES:
        raise ValueError(f"prefix must be 'pre' or 'post', not {prefix!r}")
    if ACCELERATION not in h5file:
        raise AccelerationTableMissingError("Acceleration data not found in HDF5 file")
    data = copy.deepcopy(dict(metadata))
    raw_parameters = data.get("parameters")
    parameters = dict(raw_parameters) if isinstance(raw_parameters, Mapping) else {}
    for key, value in list(parameters.items()):
        if "picture" not in key:
            continue
        pictures = _picture_values(value)
        if pictures is None:
            continue
        _write_picture_array(h5file, prefix, key, pictures)
        del parameters[key]
    document = {
        "version": data.get("version", ""),
        "profile": data.get("profile", ""),
        "parameters": parameters,
    }
    table = h5file.get_node(ACCELERATION)
    name = f"{prefix}_metadata"
    text = json.dumps(document, default=_json_default, ensure_ascii=False)
    encoded = text.encode("utf-8")
    if f"/{name}" in h5file:
        h5file.remove_node("/", name)
    if len(encoded) <= MAX_ATTRIBUTE_BYTES:
        table.attrs[name] = text
        return
    if name in table.attrs._v_attrnames:
        del table.attrs[name]
    array = h5file.create_array(
        "/",
        name,
        obj=np.frombuffer(encoded, dtype=np.uint8),
        title=f"{prefix}-measurement metadata (JSON)",
    )
    array.attrs["content"] = "application/json"


def read_metadata(h5file: tables.File, prefix: Prefix) -> str | None:
    """The ``<prefix>_metadata`` JSON text, from the attribute or the array."""
    name = f"{prefix}_metadata"
    node = f"/{name}"
    if node in h5file:
        array = h5file.get_node(node)
        if isinstance(array, tables.Array) and array.dtype == np.uint8 and array.ndim == 1:
            return bytes(array.read()).decode("utf-8", errors="replace")
    if ACCELERATION in h5file:
        table = h5file.get_node(ACCELERATION)
        if name in table._v_attrs._v_attrnames:
            value = raw_attribute(table, name)
            return value if isinstance(value, str) else None
    return None


def _write_picture_array(
    h5file: tables.File, prefix: Prefix, key: str, pictures: dict[str, str]
) -> None:
    name = picture_node_name(prefix, key)
    if f"/{name}" in h5file:
        h5file.remove_node("/", name)
    encoded = [picture.encode("utf-8") for picture in pictures.values()]
    itemsize = max((len(item) for item in encoded), default=1) or 1
    array = h5file.create_array(
        "/",
        name,
        obj=np.array(encoded, dtype=f"S{itemsize}"),
        title=f"{prefix} metadata pictures: {key}",
    )
    array.attrs["parameter"] = key
    array.attrs["indices"] = json.dumps(list(pictures))


def plain_value(value: Any) -> Any:
    """A numpy/bytes attribute value as plain JSON-compatible Python data
    (non-finite floats become None)."""
    if isinstance(value, np.ndarray):
        return [plain_value(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [plain_value(item) for item in value]
    return value


def raw_attribute(node: tables.Node, name: str) -> Any:
    """One attribute of ``node`` as stored, without PyTables' unpickling."""
    attrs = node._v_attrs
    return plain_value(attrs._g_getattr(node, name))


def node_attributes(node: tables.Node) -> dict[str, Any]:
    """All attributes of ``node`` (system ones included) as plain values, in
    PyTables' (sorted) order. Pickled values are returned as their raw text."""
    return {name: raw_attribute(node, name) for name in node._v_attrs._v_attrnames}


def read_pictures(h5file: tables.File) -> dict[str, dict[str, dict[str, str]]]:
    """Picture arrays by metadata: ``{"pre": {key: {index: base64}}, "post": {...}}``.

    A root array belongs to ``pre`` or ``post`` by its exact name prefix
    (``pre__`` / ``post__``), so e.g. ``post__pressure_picture`` is a post picture."""
    result: dict[str, dict[str, dict[str, str]]] = {prefix: {} for prefix in PREFIXES}
    for node in h5file.root._f_iter_nodes(classname="Array"):
        prefix = next((p for p in PREFIXES if node._v_name.startswith(f"{p}__")), None)
        if prefix is None or node.ndim != 1 or node.dtype.kind != "S":
            continue
        names = node._v_attrs._v_attrnames
        key = raw_attribute(node, "parameter") if "parameter" in names else None
        if not isinstance(key, str) or not key:
            key = node._v_name[len(prefix) + 2 :]
        values = [plain_value(item) for item in node.read()]
        indices = _indices(node, len(values)) if "indices" in names else None
        if indices is None:
            indices = [str(index) for index in range(len(values))]
        result[prefix][key] = dict(zip(indices, values, strict=True))
    return result


def _indices(node: tables.Node, count: int) -> list[str] | None:
    try:
        indices = json.loads(str(raw_attribute(node, "indices")))
    except ValueError:
        return None
    if isinstance(indices, list) and len(indices) == count:
        return [str(index) for index in indices]
    return None


def append_metadata(path: Path, prefix: Prefix, metadata: Mapping[str, Any]) -> None:
    """Add metadata to a closed measurement file (blocking)."""
    with HDF5_LOCK, tables.open_file(str(path), "a") as h5file:
        write_metadata(h5file, prefix, metadata)
