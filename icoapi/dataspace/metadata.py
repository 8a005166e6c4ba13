"""The metadata sent with a file: read from the HDF5 file in one function
(:func:`upload_metadata`), the only place the dataspace reads measurement files'
contents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tables

from icoapi.dataspace.errors import UnreadableFileError
from icoapi.hdf5 import metadata as metadata_io
from icoapi.hdf5.layout import HDF5_LOCK


def upload_metadata(path: Path) -> dict[str, Any]:
    """The acceleration node info sent with a file (interface §8.2): all
    attributes, JSON text parsed, each picture parameter replaced by its count.

    :raises DataspaceError: (not transient) the file is not a readable HDF5 file."""
    with HDF5_LOCK:
        try:
            h5 = tables.open_file(str(path), "r")
        except Exception as error:
            error_type = type(error).__name__
            detail = f"{path.name} is not a readable HDF5 file ({error_type})."
            raise UnreadableFileError(detail) from error
        try:
            if "/acceleration" not in h5:
                attributes: dict[str, Any] = {}
            else:
                table = h5.get_node("/acceleration")
                attributes = {
                    key: _parse_json(value)
                    for key, value in metadata_io.node_attributes(table).items()
                }
            # Metadata too large for an attribute is stored as an array of its own.
            for prefix in ("pre", "post"):
                text = metadata_io.read_metadata(h5, prefix)
                if text is not None:
                    attributes[f"{prefix}_metadata"] = _parse_json(text)
            for prefix, by_key in metadata_io.read_pictures(h5).items():
                meta = attributes.get(f"{prefix}_metadata")
                if isinstance(meta, dict) and isinstance(meta.get("parameters"), dict):
                    for key, pictures in by_key.items():
                        meta["parameters"][key] = len(pictures)
        finally:
            h5.close()
    return {
        "name": "acceleration",
        "type": "Table",
        "path": "/acceleration",
        "attributes": attributes,
    }


def _parse_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
