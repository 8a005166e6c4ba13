"""Pre- and post-measurement metadata in a measurement file.

Layout (compatible with upstream ICOapi files):

* attribute ``<prefix>_metadata`` on ``/acceleration``: JSON
  ``{"version", "profile", "parameters"}``;
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
from typing import Any, Literal

import numpy as np
import tables

Prefix = Literal["pre", "post"]
PREFIXES: tuple[Prefix, ...] = ("pre", "post")
ACCELERATION = "/acceleration"


class AccelerationTableMissingError(LookupError):
    """The file has no ``/acceleration`` table to attach metadata to."""


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
    table.attrs[f"{prefix}_metadata"] = json.dumps(
        document, default=_json_default, ensure_ascii=False
    )


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
