"""The check every measurement file passes before PyTables opens it.

A measurement file can come from anywhere (an upload, a copy into the folder), so
it is hostile input. PyTables hands some attribute values to :func:`pickle.loads`
(scalar ASCII strings ending in ``"."``, which it reads by itself when it opens a
file or a node: the root's ``VERSION``, a node's ``TITLE``, a table's
``FIELD_n_FILL``), and HDF5 follows references out of the file (external
storage, external links, virtual datasets). This module inspects a file with
h5py, which reads attributes as bytes and never unpickles, and refuses:

* attributes that PyTables would unpickle and whose pickle imports or calls
  anything (pickles of plain data, which PyTables writes for lists and ``None``,
  and text that merely ends in a period stay allowed);
* external storage, virtual datasets, external, soft and user-defined links,
  object and region references, committed data types;
* what no measurement file holds: variable-length data sets (PyTables' object
  arrays are pickles), opaque data, unknown filters, files of PyTables 1.x,
  more than :data:`MAX_OBJECTS` objects, attributes larger than
  :data:`MAX_ATTRIBUTE_BYTES`, an ``/acceleration`` that is not a table.

:class:`FileVerdicts` caches the outcome per file version (path, size,
modification time), so a listing checks each file once.
"""

from __future__ import annotations

import logging
import os
import pickletools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from icoapi.hdf5.layout import ACCELERATION_PATH, HDF5_LOCK

logger = logging.getLogger(__name__)

MAX_OBJECTS = 100_000
MAX_DEPTH = 16
MAX_ATTRIBUTES_PER_OBJECT = 4096
MAX_ATTRIBUTE_BYTES = 16 * 1024 * 1024
VERDICT_CACHE_SIZE = 50_000
# Filters PyTables writes or reads (deflate, shuffle, fletcher32, szip, n-bit,
# scale-offset, LZO, bzip2, Blosc, Blosc2); any other would need a plug-in.
KNOWN_FILTERS = frozenset({1, 2, 3, 4, 5, 6, 305, 307, 32001, 32026})
# Pickle opcodes that import or call something; plain data needs none of them.
UNSAFE_OPCODES = frozenset(
    {
        "GLOBAL",
        "STACK_GLOBAL",
        "INST",
        "OBJ",
        "REDUCE",
        "NEWOBJ",
        "NEWOBJ_EX",
        "BUILD",
        "EXT1",
        "EXT2",
        "EXT4",
        "PERSID",
        "BINPERSID",
    }
)
START_ATTRIBUTES = frozenset({"icoapi_version", "Start_Time"})
_PLAIN_TYPES = (h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.BITFIELD, h5py.h5t.ENUM)


class UnsafeFileError(Exception):
    """The file may not be opened with PyTables; the message says why."""


@dataclass(frozen=True)
class FileSummary:
    """What the check learnt of a file that passed it."""

    start: datetime | None
    """``Start_Time`` of a file icoapi wrote (``icoapi_version`` present)."""


def _object_path(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


def unsafe_pickle(value: bytes) -> bool:
    """Whether ``pickle.loads(value)`` could import or call anything: an unsafe
    opcode in the part of ``value`` that parses as a pickle (the unpickler stops
    where parsing stops, so what follows is never run)."""
    try:
        for opcode, _, _ in pickletools.genops(value):
            if opcode.name in UNSAFE_OPCODES:
                return True
    except Exception:  # malformed from here on: the unpickler fails here too
        return False
    return False


def _type_problem(kind: h5py.h5t.TypeID, where: str) -> str | None:
    """Why a data type is refused, or None (datasets: no variable length)."""
    cls = kind.get_class()
    if cls in _PLAIN_TYPES:
        return None
    if cls == h5py.h5t.STRING:
        return f"{where} has variable-length strings" if kind.is_variable_str() else None
    if cls == h5py.h5t.COMPOUND:
        for index in range(kind.get_nmembers()):
            problem = _type_problem(kind.get_member_type(index), where)
            if problem:
                return problem
        return None
    if cls == h5py.h5t.ARRAY:
        return _type_problem(kind.get_super(), where)
    if cls == h5py.h5t.REFERENCE:
        return f"{where} holds object references"
    if cls == h5py.h5t.VLEN:
        return f"{where} holds variable-length data"
    return f"{where} has an unsupported data type"


def _attribute_type_problem(kind: h5py.h5t.TypeID, where: str) -> str | None:
    cls = kind.get_class()
    if cls == h5py.h5t.STRING:
        return None  # fixed or variable length: both read as text
    if cls == h5py.h5t.ARRAY:
        return _attribute_type_problem(kind.get_super(), where)
    return _type_problem(kind, where)


def _read_text(attribute: Any, kind: h5py.h5t.TypeID) -> bytes:
    """The bytes of a scalar string attribute (fixed or variable length)."""
    if kind.is_variable_str():
        buffer = np.empty((), dtype=h5py.string_dtype("utf-8"))
        attribute.read(buffer, mtype=h5py.h5t.py_create(buffer.dtype))
        value = buffer[()]
        return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
    buffer = np.empty((), dtype=f"S{max(1, kind.get_size())}")
    attribute.read(buffer, mtype=kind)  # as stored: no charset conversion
    return bytes(buffer[()])


def _check_attributes(
    obj: Any, where: str, wanted: frozenset[str] = frozenset()
) -> dict[str, bytes]:
    """Check the attributes of ``obj``; returns the text of those ``wanted``
    (scalar strings). Only string attributes are read at all."""
    count = h5py.h5a.get_num_attrs(obj.id)
    if count > MAX_ATTRIBUTES_PER_OBJECT:
        raise UnsafeFileError(f"{where} has more than {MAX_ATTRIBUTES_PER_OBJECT} attributes")
    texts = {}
    for index in range(count):
        attribute = h5py.h5a.open(obj.id, index=index)
        name = attribute.name.decode("utf-8", errors="replace")
        label = f"attribute {name!r} of {where}"
        kind = attribute.get_type()
        problem = _attribute_type_problem(kind, label)
        if problem:
            raise UnsafeFileError(problem)
        shape = attribute.shape
        size = kind.get_size() * max(1, int(np.prod(shape or (1,))))
        if size > MAX_ATTRIBUTE_BYTES:
            raise UnsafeFileError(f"{label} is larger than {MAX_ATTRIBUTE_BYTES} bytes")
        if kind.get_class() != h5py.h5t.STRING or shape != ():
            continue
        # PyTables unpickles scalar ASCII strings that end in "."
        if kind.get_cset() == h5py.h5t.CSET_ASCII or name in wanted:
            text = _read_text(attribute, kind)
            if (
                kind.get_cset() == h5py.h5t.CSET_ASCII
                and text.endswith(b".")
                and unsafe_pickle(text)
            ):
                raise UnsafeFileError(f"{label} is a pickle that would run code")
            if name in wanted:
                texts[name] = text
    return texts


def _check_dataset(dataset: h5py.Dataset, where: str) -> None:
    plist = dataset.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        raise UnsafeFileError(f"{where} is a virtual dataset (data from other files)")
    if plist.get_external_count() > 0:
        raise UnsafeFileError(f"{where} keeps its data in external files")
    for index in range(plist.get_nfilters()):
        code = plist.get_filter(index)[0]
        if code not in KNOWN_FILTERS:
            raise UnsafeFileError(f"{where} uses an unknown filter ({code})")
    problem = _type_problem(dataset.id.get_type(), where)
    if problem:
        raise UnsafeFileError(problem)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value) if isinstance(value, str) else None


def _format_version(value: Any) -> tuple[int, ...] | None:
    text = _text(value)
    try:
        return tuple(int(part) for part in text.split(".")) if text else None
    except ValueError:
        return None


class _Walk:
    """One pass over a file's objects through its links."""

    def __init__(self, h5: h5py.File) -> None:
        self.h5 = h5
        self.seen: set[tuple[int, int]] = set()
        self.start: datetime | None = None

    def run(self) -> None:
        root_attributes = _check_attributes(self.h5, "/", frozenset({"PYTABLES_FORMAT_VERSION"}))
        version = root_attributes.get("PYTABLES_FORMAT_VERSION")
        parsed = _format_version(version) if version is not None else None
        if version is not None and (parsed is None or parsed < (2,)):
            raise UnsafeFileError("files of PyTables 1.x (or an unknown format version)")
        self._mark(self.h5)
        self._group(self.h5, "/", 0)

    def _mark(self, obj: Any) -> bool:
        """False if ``obj`` was visited already (hard links may form cycles)."""
        info = h5py.h5o.get_info(obj.id)
        key = (info.fileno, info.addr)
        if key in self.seen:
            return False
        self.seen.add(key)
        if len(self.seen) > MAX_OBJECTS:
            raise UnsafeFileError(f"more than {MAX_OBJECTS} objects")
        return True

    def _group(self, group: h5py.Group, where: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise UnsafeFileError(f"groups nested deeper than {MAX_DEPTH}")
        if len(group) > MAX_OBJECTS:
            raise UnsafeFileError(f"more than {MAX_OBJECTS} objects")
        for name in group:
            path = _object_path(where, name)
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise UnsafeFileError(f"{path} is an external link (to another file)")
            if isinstance(link, h5py.SoftLink):
                raise UnsafeFileError(f"{path} is a soft link")
            if not isinstance(link, h5py.HardLink):
                raise UnsafeFileError(f"{path} is a link of an unknown kind")
            obj = group.get(name)
            if not self._mark(obj):
                continue
            if isinstance(obj, h5py.Group):
                _check_attributes(obj, path)
                self._group(obj, path, depth + 1)
            elif isinstance(obj, h5py.Dataset):
                self._dataset(obj, path)
            else:
                raise UnsafeFileError(f"{path} is neither a group nor a dataset")

    def _dataset(self, dataset: h5py.Dataset, path: str) -> None:
        _check_dataset(dataset, path)
        if path != ACCELERATION_PATH:
            _check_attributes(dataset, path)
            return
        attributes = _check_attributes(dataset, path, START_ATTRIBUTES)
        if dataset.ndim != 1 or dataset.dtype.names is None:
            raise UnsafeFileError(f"{ACCELERATION_PATH} is not a table")
        if "icoapi_version" in attributes:
            self.start = _start_time(attributes.get("Start_Time"))


def _start_time(value: Any) -> datetime | None:
    text = _text(value)
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def check_file(path: Path) -> FileSummary:
    """Inspect ``path`` without PyTables (blocking).

    :raises UnsafeFileError: the file must not be opened; the message says why.
    :raises FileNotFoundError: it does not exist."""
    if not path.is_file():
        if path.exists():
            raise UnsafeFileError("not a regular file")
        raise FileNotFoundError(path)
    with HDF5_LOCK:
        try:
            h5 = h5py.File(path, "r", locking=False)
        except OSError as error:
            raise UnsafeFileError("not an HDF5 file") from error
        try:
            walk = _Walk(h5)
            walk.run()
        except UnsafeFileError:
            raise
        except Exception as error:  # a damaged structure (h5py/HDF5 errors)
            raise UnsafeFileError(f"unreadable HDF5 structure ({type(error).__name__})") from error
        finally:
            h5.close()
    return FileSummary(start=walk.start)


@dataclass(frozen=True)
class Verdict:
    summary: FileSummary | None
    problem: str | None


class FileVerdicts:
    """The outcome of :func:`check_file` per file version (path, size,
    modification time): a file is inspected again only after it changed."""

    def __init__(self, capacity: int = VERDICT_CACHE_SIZE) -> None:
        self.capacity = capacity
        self._verdicts: OrderedDict[tuple[str, int, int, int, int], Verdict] = OrderedDict()
        self._lock = threading.Lock()
        self.checks = 0
        """Files inspected so far (cache misses)."""

    def verdict(self, path: Path, stat: os.stat_result | None = None) -> Verdict:
        """The (cached) verdict on ``path``; ``stat`` is its ``os.stat`` if known.

        :raises FileNotFoundError: it does not exist."""
        stat = stat if stat is not None else path.stat()
        # ctime too: it changes with the content and, unlike mtime, cannot be set back.
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        with self._lock:
            cached = self._verdicts.get(key)
            if cached is not None:
                self._verdicts.move_to_end(key)
                return cached
        self.checks += 1
        try:
            verdict = Verdict(check_file(path), None)
        except UnsafeFileError as error:
            verdict = Verdict(None, str(error))
            logger.warning("%s is refused and never opened: %s", path.name, error)
        with self._lock:
            self._verdicts[key] = verdict
            while len(self._verdicts) > self.capacity:
                self._verdicts.popitem(last=False)
        return verdict

    def require_safe(self, path: Path) -> FileSummary:
        """The summary of a file that passes the check.

        :raises UnsafeFileError: it does not.
        :raises FileNotFoundError: it does not exist."""
        verdict = self.verdict(path)
        if verdict.problem is not None or verdict.summary is None:
            raise UnsafeFileError(verdict.problem or "unchecked")
        return verdict.summary
