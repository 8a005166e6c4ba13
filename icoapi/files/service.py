"""Measurement files: listing, deletion, analysis, metadata and embedded files.

All file and HDF5 work runs in worker threads; every PyTables call holds
:data:`~icoapi.hdf5.layout.HDF5_LOCK` for one short step only (one chunk
of rows, one chunk of an embedded file), so a long analysis never stalls the
measurement writer.

Names: a measurement file is named by a single path component ending in
``.hdf5`` (see :func:`check_measurement_name`); :meth:`MeasurementFileService.resolve`
turns it into a path inside the measurement directory or raises.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
import tables

from icoapi.core.disk import GIB, disk_capacity
from icoapi.core.names import is_plain_file_name
from icoapi.core.tasks import run_blocking
from icoapi.core.uploads import ReceivedFile, ReceiveFiles, UploadRules
from icoapi.files.errors import (
    AccelerationDataNotFoundError,
    EmbeddedFileTooLargeError,
    FileInUseError,
    FileOperationError,
    InvalidFileNameError,
    InvalidHDF5Error,
    MeasurementFileNotFoundError,
)
from icoapi.files.schemas import (
    EmbeddedFileDetails,
    EmbeddedFileInfo,
    FileCloudDetails,
    FileListResponse,
    HDF5NodeInfo,
    MeasurementFileDetails,
    ParsedMetadata,
    StoredSensor,
)
from icoapi.hdf5 import metadata as metadata_io
from icoapi.hdf5.layout import HDF5_LOCK, SENSOR_FLOATS
from icoapi.hdf5.reading import measurement_start

logger = logging.getLogger(__name__)

MIB = 1024**2
SUFFIX = ".hdf5"
EMBEDDED_GROUP = "embedded_files"
# Analyze stream: blocks of 1000 rows, every 10th row of a block is sent.
BLOCK_ROWS = 1000
ROW_STEP = 10
BLOCKS_PER_READ = 100
EMBEDDED_CHUNK = MIB
# PyTables sizes a table's I/O buffer by the table size (up to 16 MiB); reads here
# go in bounded steps anyway.
READ_BUFFER = MIB
STALE_UPLOAD_SECONDS = 24 * 3600
CREATED_CACHE_SIZE = 10_000
_UMLAUTS = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
)


def check_measurement_name(name: str) -> None:
    """Accept only a plain file name ending in ``.hdf5``.

    :raises InvalidFileNameError: for path separators (also percent-encoded),
        ``..``, NUL/control characters, drive letters, hidden names and other suffixes."""
    if not is_plain_file_name(name):
        raise InvalidFileNameError()
    if not name.endswith(SUFFIX):
        raise InvalidFileNameError(
            "Invalid file name: only measurement files (*.hdf5) are handled here."
        )


def to_ascii(text: str) -> str:
    """ASCII transliteration (umlauts as ae/oe/ue, accents dropped, others removed)."""
    return (
        unicodedata.normalize("NFKD", text.translate(_UMLAUTS))
        .encode("ascii", "ignore")
        .decode("ascii")
    )


def sanitize_upload_name(filename: str) -> str:
    """The stored name of an uploaded file: its base name with unsafe characters
    replaced by ``_``.

    :raises InvalidFileNameError: if it does not end in ``.hdf5`` or has no stem."""
    base = re.split(r"[\\/]", filename)[-1].strip()
    if not base.lower().endswith(SUFFIX):
        raise InvalidFileNameError("Only HDF5 measurement files (*.hdf5) can be uploaded.")
    stem = to_ascii(base[: -len(SUFFIX)])
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    stem = re.sub(r"\.{2,}", ".", stem).strip("._- ")[:200]
    if not stem:
        raise InvalidFileNameError("The uploaded file name has no usable characters.")
    return f"{stem}{SUFFIX}"


def embedded_dataset_name(original_name: str) -> str:
    """HDF5 node name for an embedded file: ``hello.txt`` → ``hello_txt``
    (ASCII letters, digits and ``_``; a leading digit gets ``file__``)."""
    base = re.split(r"[\\/]", original_name)[-1]
    name = re.sub(r"[^A-Za-z0-9]+", "_", to_ascii(base)).strip("_")[:100] or "file"
    return f"file__{name}" if name[0].isdigit() else name


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).isoformat()


def _parse_text(value: Any) -> Any:
    """Attribute text that is JSON becomes the parsed value (``"true"`` → True)."""
    if not isinstance(value, str):
        return value

    def reject(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return json.loads(value, parse_constant=reject)
    except ValueError:
        return value


def _numbers(array: np.ndarray[Any, Any]) -> list[Any]:
    if array.dtype.kind in "iub":
        return array.tolist()  # type: ignore[no-any-return]
    if array.dtype.kind == "f":
        values = array.astype(np.float64)
        if np.isfinite(values).all():
            return values.tolist()  # type: ignore[no-any-return]
        return [float(v) if np.isfinite(v) else None for v in values]
    return [metadata_io.plain_value(item) for item in array.tolist()]


@dataclass(frozen=True)
class EmbeddedDownload:
    info: EmbeddedFileInfo
    length: int  # bytes that ``chunks`` yields
    chunks: AsyncIterator[bytes]


CloudStatusProvider = Callable[[list[tuple[str, int, int]]], dict[str, FileCloudDetails]]
"""Cloud status by file name for (name, size, mtime in ns) of listed files; blocking."""


def _open_hdf5(path: Path, mode: Literal["r", "a"]) -> tables.File:
    """Open a measurement file (caller holds HDF5_LOCK).

    :raises InvalidHDF5Error: not an HDF5 file, or a PyTables 1.x file (whose
        attributes could carry pickles).
    :raises FileInUseError: already open in an incompatible mode in this process."""
    try:
        valid = tables.is_hdf5_file(str(path))
    except FileNotFoundError:
        raise MeasurementFileNotFoundError() from None
    except Exception:
        valid = False
    if not valid:
        raise InvalidHDF5Error()
    try:
        h5 = tables.open_file(str(path), mode=mode, IO_BUFFER_SIZE=READ_BUFFER)
    except ValueError as error:
        raise FileInUseError(
            "The file is open in another operation (e.g. a running measurement). Try again later."
        ) from error
    except Exception as error:
        if mode == "r":
            raise InvalidHDF5Error() from error
        raise FileOperationError(f"Failed to open file for writing: {error}") from error
    version = str(h5.format_version or "2.0")
    if version.split(".")[0].isdigit() and int(version.split(".")[0]) < 2:
        h5.close()
        raise InvalidHDF5Error("Files in the PyTables 1.x format are not supported.")
    return h5


def _open_locked(path: Path, mode: Literal["r", "a"]) -> tables.File:
    with HDF5_LOCK:
        return _open_hdf5(path, mode)


def _close(h5: tables.File) -> None:
    with HDF5_LOCK:
        if h5.isopen:
            h5.close()


def _acceleration(h5: tables.File) -> Any:
    if "/acceleration" not in h5:
        raise AccelerationDataNotFoundError()
    table = h5.get_node("/acceleration")
    if not isinstance(table, tables.Table):
        raise InvalidHDF5Error("Acceleration data is not a table")
    return table


class MeasurementFileService:
    """The measurement directory and the files in it.

    Args:
        directory: the measurement directory.
        files_in_use: names of the files a running measurement writes; these
            cannot be deleted or changed.
        max_upload_size: limit of ``POST /files/analyze`` in bytes.
        max_embedded_size: limit per embedded file in bytes.
        max_embedded_files: files per embed request.
        cloud_status: the dataspace's status of listed files (none: not_uploaded).
    """

    def __init__(
        self,
        directory: Path,
        files_in_use: Callable[[], set[str]],
        *,
        max_upload_size: int = 2 * GIB,
        max_embedded_size: int = 64 * MIB,
        max_embedded_files: int = 32,
        cloud_status: CloudStatusProvider | None = None,
    ) -> None:
        self.directory = directory
        self.files_in_use = files_in_use
        self.max_upload_size = max_upload_size
        self.max_embedded_size = max_embedded_size
        self.max_embedded_files = max_embedded_files
        self.cloud_status = cloud_status
        self._created_cache: dict[tuple[str, int, int], float] = {}

    # -- names -----------------------------------------------------------------

    def resolve(self, name: str) -> Path:
        """The path of an existing measurement file named ``name``.

        :raises InvalidFileNameError: bad name, or a link that leads outside the directory.
        :raises MeasurementFileNotFoundError: no such file."""
        check_measurement_name(name)
        path = self.directory / name
        if path.resolve().parent != self.directory.resolve():
            raise InvalidFileNameError(
                "Invalid file name: the file lies outside the measurement directory."
            )
        if not path.is_file():
            raise MeasurementFileNotFoundError()
        return path

    def ensure_not_in_use(self, path: Path) -> None:
        """:raises FileInUseError: if a running measurement writes this file."""
        in_use = self.files_in_use()
        if path.name in in_use or path.resolve().name in in_use:
            raise FileInUseError(f"File '{path.name}' is being written by a running measurement.")

    # -- listing and deletion ----------------------------------------------------

    async def list_files(self) -> FileListResponse:
        return await run_blocking(self._list_files)

    def _list_files(self) -> FileListResponse:
        self.directory.mkdir(parents=True, exist_ok=True)
        capacity = disk_capacity(self.directory)
        root = self.directory.resolve()
        files: list[tuple[float, MeasurementFileDetails]] = []
        mtimes: dict[str, int] = {}
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.startswith(".upload-") and entry.name.endswith(".part"):
                    _remove_stale_upload(Path(entry.path))
                if entry.name.startswith(".") or not entry.name.endswith(SUFFIX):
                    continue
                try:
                    if not entry.is_file() or Path(entry.path).resolve().parent != root:
                        continue
                    stat = entry.stat()
                except OSError:
                    continue  # vanished or unreadable meanwhile
                created = self._created(Path(entry.path), stat)
                mtimes[entry.name] = stat.st_mtime_ns
                files.append(
                    (
                        created,
                        MeasurementFileDetails(
                            name=entry.name,
                            created=_iso(created),
                            modified=_iso(stat.st_mtime),
                            size=stat.st_size,
                        ),
                    )
                )
        files.sort(key=lambda item: (item[0], item[1].name), reverse=True)
        if self.cloud_status is not None:
            statuses = self.cloud_status([(d.name, d.size, mtimes[d.name]) for _, d in files])
            for _, details in files:
                details.cloud = statuses.get(details.name, details.cloud)
        return FileListResponse(
            capacity=capacity,
            files=[details for _, details in files],
            directory=str(root),
        )

    def _created(self, path: Path, stat: os.stat_result) -> float:
        """The measurement's start for files icoapi wrote, else the file's birth
        time where the file system has one, else its modification time. Cached
        per file version (the start time is read from the file)."""
        key = (path.name, stat.st_size, stat.st_mtime_ns)
        cached = self._created_cache.get(key)
        if cached is not None:
            return cached
        start = measurement_start(path)
        if start is not None:
            created = start.timestamp()
        else:
            created = getattr(stat, "st_birthtime", None) or stat.st_mtime
        if len(self._created_cache) > CREATED_CACHE_SIZE:
            self._created_cache.clear()
        self._created_cache[key] = created
        return created

    async def delete(self, path: Path) -> None:
        self.ensure_not_in_use(path)
        try:
            await run_blocking(path.unlink)
        except FileNotFoundError:
            raise MeasurementFileNotFoundError() from None
        except OSError as error:
            raise FileOperationError(f"Failed to delete file: {error}") from error
        logger.info("Deleted measurement file %s", path.name)

    # -- analysis ----------------------------------------------------------------

    async def metadata(self, path: Path, download_base: str) -> ParsedMetadata:
        """Metadata of a measurement file (the first line of the analyze stream)."""
        self.ensure_not_in_use(path)
        document, _ = await run_blocking(self._read_metadata, path, download_base)
        return ParsedMetadata.model_validate(document)

    async def analyze(self, path: Path) -> AsyncIterator[bytes]:
        """The analyze stream (NDJSON). Errors about the file are raised here, before
        the stream starts; the returned iterator reads the table chunk by chunk."""
        self.ensure_not_in_use(path)
        document, nrows = await run_blocking(self._read_metadata, path, "files")
        header = json.dumps(document, ensure_ascii=False).encode("utf-8") + b"\n"
        return self._analyze_stream(path, header, nrows)

    def _read_metadata(self, path: Path, download_base: str) -> tuple[dict[str, Any], int]:
        with HDF5_LOCK:
            h5 = _open_hdf5(path, "r")
            try:
                return self._metadata_document(h5, path.name, download_base)
            finally:
                h5.close()

    def _metadata_document(
        self, h5: tables.File, name: str, download_base: str
    ) -> tuple[dict[str, Any], int]:
        table = _acceleration(h5)
        attributes = {
            key: _parse_text(value) for key, value in metadata_io.node_attributes(table).items()
        }
        for kind in metadata_io.PREFIXES:
            text = metadata_io.read_metadata(h5, kind)  # attribute or, if large, array
            if text is not None:
                attributes[f"{kind}_metadata"] = _parse_text(text)
        pictures: dict[str, list[str]] = {}
        for prefix, by_key in metadata_io.read_pictures(h5).items():
            meta = attributes.get(f"{prefix}_metadata")
            parameters = meta.get("parameters") if isinstance(meta, dict) else None
            for key, values in by_key.items():
                pictures[f"{prefix}__{key}"] = list(values.values())
                if isinstance(parameters, dict):
                    parameters[key] = values
        document = {
            "acceleration": HDF5NodeInfo(
                name="acceleration", type="Table", path="/acceleration", attributes=attributes
            ).model_dump(),
            "pictures": pictures,
            "sensors": [s.model_dump() for s in self._sensors(h5)],
            "embedded_files": [
                e.model_dump() for e in self._embedded_files(h5, name, download_base)
            ],
        }
        return document, int(table.nrows)

    @staticmethod
    def _sensors(h5: tables.File) -> list[StoredSensor]:
        if "/sensors" not in h5 or not isinstance(h5.get_node("/sensors"), tables.Table):
            return []
        table = h5.get_node("/sensors")
        sensors = []
        for row in table.read(0, min(table.nrows, 100)):
            values = {column: metadata_io.plain_value(row[column]) for column in table.colnames}
            for column in ("name", "sensor_id", "unit", "dimension"):
                values[column] = str(values.get(column) or "")
            for column in SENSOR_FLOATS:
                number = values.get(column)
                values[column] = float(number) if isinstance(number, int | float) else 0.0
            values["sensor_type"] = values.get("sensor_type") or None
            values["channel"] = values.get("channel") or None
            sensors.append(StoredSensor.model_validate(values))
        return sensors

    @staticmethod
    def _embedded_files(
        h5: tables.File, name: str, download_base: str
    ) -> list[EmbeddedFileDetails]:
        if f"/{EMBEDDED_GROUP}" not in h5:
            return []
        group = h5.get_node(f"/{EMBEDDED_GROUP}")
        if not isinstance(group, tables.Group):
            return []
        result = []
        for node in group._f_iter_nodes(classname="Leaf"):
            info = _embedded_info(node)
            path = f"{quote(name, safe='')}/embedded/{quote(info.dataset_name, safe='')}"
            result.append(
                EmbeddedFileDetails(**info.model_dump(), download_path=f"{download_base}/{path}")
            )
        return result

    async def _analyze_stream(self, path: Path, header: bytes, nrows: int) -> AsyncIterator[bytes]:
        # The file is opened per chunk: no handle outlives a step, so a client that
        # goes away leaves nothing open, and metadata edits can run in between.
        yield header
        sent = 0
        for start in range(0, nrows, BLOCK_ROWS * BLOCKS_PER_READ):
            lines, sent = await run_blocking(self._analyze_lines, path, start, nrows, sent)
            yield lines
        yield b'{"progress": 1.0}\n'

    @staticmethod
    def _analyze_lines(path: Path, start: int, nrows: int, sent: int) -> tuple[bytes, int]:
        stop = min(start + BLOCK_ROWS * BLOCKS_PER_READ, nrows)
        with HDF5_LOCK:
            h5 = _open_hdf5(path, "r")
            try:
                table = _acceleration(h5)
                rows = table.read(start, stop, ROW_STEP)
                columns = [c for c in table.colnames if c not in ("counter", "timestamp")]
            finally:
                h5.close()
        fields = rows.dtype.names or ()
        per_block = BLOCK_ROWS // ROW_STEP
        lines = []
        for offset in range(0, len(rows), per_block):
            block = rows[offset : offset + per_block]
            chunk = {
                "name": path.name,
                "counter": _numbers(block["counter"]) if "counter" in fields else [],
                "timestamp": (
                    _numbers(block["timestamp"].astype(np.float64)) if "timestamp" in fields else []
                ),
                "datasets": [{"name": c, "data": _numbers(block[c])} for c in columns],
            }
            sent += len(block)
            lines.append(json.dumps(chunk))
            lines.append(json.dumps({"progress": min(sent * ROW_STEP / nrows, 1.0)}))
        return ("\n".join(lines) + "\n").encode("utf-8"), sent

    # -- metadata ------------------------------------------------------------------

    async def overwrite_metadata(
        self, path: Path, prefix: Literal["pre", "post"], metadata: dict[str, Any]
    ) -> None:
        metadata_io.check_metadata_size(metadata)
        self.ensure_not_in_use(path)
        await run_blocking(self._overwrite_metadata, path, prefix, metadata)

    @staticmethod
    def _overwrite_metadata(
        path: Path, prefix: Literal["pre", "post"], metadata: dict[str, Any]
    ) -> None:
        with HDF5_LOCK:
            h5 = _open_hdf5(path, "a")
            try:
                _acceleration(h5)
                metadata_io.write_metadata(h5, prefix, metadata)
            finally:
                h5.close()

    # -- uploads -------------------------------------------------------------------

    def upload_name(self, filename: str) -> str:
        return sanitize_upload_name(filename)

    async def store_upload(self, receive: ReceiveFiles) -> str:
        """Receive one measurement file and move it into the measurement directory;
        returns its name (``stem__N.hdf5`` if the name is taken). The temporary
        file is removed on error.

        :raises InvalidFileNameError: the name does not end in ``.hdf5`` (checked
            before any data is stored).
        :raises InvalidHDF5Error: if it is not an HDF5 file."""
        rules = UploadRules(
            self.directory, self.max_upload_size, max_files=1, check_filename=self.upload_name
        )
        [upload] = await receive(rules)
        try:
            name = self.upload_name(upload.filename)
            return await run_blocking(self._store_upload, upload.path, name)
        finally:
            await run_blocking(_remove, upload.path)

    def _store_upload(self, temporary: Path, name: str) -> str:
        with HDF5_LOCK:
            try:
                valid = tables.is_hdf5_file(str(temporary))
            except Exception:
                valid = False
        if not valid:
            raise InvalidHDF5Error()
        stem = re.sub(r"__\d+$", "", name[: -len(SUFFIX)])
        candidates = [name] + [f"{stem}__{n}{SUFFIX}" for n in range(1, 10_000)]
        for candidate in candidates:
            target = self.directory / candidate
            try:
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            try:
                os.replace(temporary, target)
            except OSError as error:
                _remove(target)
                raise FileOperationError(f"Failed to store the upload: {error}") from error
            logger.info("Stored uploaded measurement file %s", candidate)
            return candidate
        raise FileOperationError("No free name for the uploaded file.")

    # -- embedded files --------------------------------------------------------------

    async def check_embeddable(self, path: Path) -> None:
        """Refuse before the upload is received: in-use files and non-HDF5 files."""
        self.ensure_not_in_use(path)
        await run_blocking(self._check_hdf5, path)

    @staticmethod
    def _check_hdf5(path: Path) -> None:
        with HDF5_LOCK:
            _open_hdf5(path, "r").close()

    async def embed(self, path: Path, receive: ReceiveFiles) -> list[EmbeddedFileInfo]:
        """Receive files and embed them in the measurement file ``path``. In-use
        and non-HDF5 files are refused before the upload is received."""
        await self.check_embeddable(path)
        uploads = await receive(
            UploadRules(self.directory, self.max_embedded_size, max_files=self.max_embedded_files)
        )
        return await self._add_embedded_uploads(path, uploads)

    async def _add_embedded_uploads(
        self, path: Path, uploads: list[ReceivedFile]
    ) -> list[EmbeddedFileInfo]:
        try:
            self.ensure_not_in_use(path)
            return await run_blocking(self._add_embedded, path, uploads)
        finally:
            for upload in uploads:
                await run_blocking(_remove, upload.path)

    def _add_embedded(self, path: Path, uploads: list[ReceivedFile]) -> list[EmbeddedFileInfo]:
        h5 = _open_locked(path, "a")
        try:
            with HDF5_LOCK:
                group = (
                    h5.get_node(f"/{EMBEDDED_GROUP}")
                    if f"/{EMBEDDED_GROUP}" in h5
                    else h5.create_group("/", EMBEDDED_GROUP, title="Embedded files")
                )
                if not isinstance(group, tables.Group):
                    raise InvalidHDF5Error(f"/{EMBEDDED_GROUP} is not a group.")
            return [self._embed(h5, group, upload) for upload in uploads]
        finally:
            _close(h5)

    @staticmethod
    def _embed(h5: tables.File, group: Any, upload: ReceivedFile) -> EmbeddedFileInfo:
        base = embedded_dataset_name(upload.filename)
        with HDF5_LOCK:
            existing = set(group._v_children)
            dataset = base
            counter = 1
            while dataset in existing:
                dataset = f"{base}__{counter}"
                counter += 1
            array = h5.create_earray(
                group,
                dataset,
                tables.UInt8Atom(),
                shape=(0,),
                expectedrows=max(upload.size, 1),
                title=upload.filename[:200],
            )
        with upload.path.open("rb") as source:
            while chunk := source.read(EMBEDDED_CHUNK):
                with HDF5_LOCK:
                    array.append(np.frombuffer(chunk, dtype=np.uint8))
        mime = upload.content_type or "application/octet-stream"
        with HDF5_LOCK:
            array.attrs["size"] = upload.size
            array.attrs["mime"] = mime
            array.attrs["original_name"] = upload.filename
            array.flush()
        logger.info("Embedded %s as %s in %s", upload.filename, dataset, h5.filename)
        return EmbeddedFileInfo(
            dataset_name=dataset, original_name=upload.filename, mime=mime, size=upload.size
        )

    async def open_embedded(self, path: Path, dataset: str) -> EmbeddedDownload:
        """Info and byte chunks of an embedded file (errors raised before streaming)."""
        self.ensure_not_in_use(path)
        info, rows, length, content = await run_blocking(self._embedded_node_info, path, dataset)
        chunks = (
            _split(content) if content is not None else self._embedded_chunks(path, dataset, rows)
        )
        return EmbeddedDownload(info=info, length=length, chunks=chunks)

    @staticmethod
    def _embedded_node(h5: tables.File, dataset: str) -> Any:
        """The node of an embedded file in either layout: an array of bytes (what
        this service writes, read in chunks) or a scalar byte string (what other
        ICOtronic tools write)."""
        node_path = f"/{EMBEDDED_GROUP}/{dataset}"
        if not re.fullmatch(r"\w+", dataset) or node_path not in h5:
            raise MeasurementFileNotFoundError()
        node = h5.get_node(node_path)
        if not isinstance(node, tables.Array):  # EArray/CArray included
            raise MeasurementFileNotFoundError()
        if not node.shape and node.dtype.kind != "S":
            raise MeasurementFileNotFoundError()
        return node

    def _embedded_node_info(
        self, path: Path, dataset: str
    ) -> tuple[EmbeddedFileInfo, int, int, bytes | None]:
        """Info, rows and byte length of an embedded file; for a scalar byte
        string also its content (HDF5 reads a scalar only whole)."""
        with HDF5_LOCK:
            h5 = _open_hdf5(path, "r")
            try:
                node = self._embedded_node(h5, dataset)
                info = _embedded_info(node)
                if not node.shape:
                    if node.dtype.itemsize > self.max_embedded_size:
                        raise EmbeddedFileTooLargeError(
                            f"The embedded file {dataset} is stored as one byte string of "
                            f"{node.dtype.itemsize} bytes; at most {self.max_embedded_size} "
                            "bytes are read that way."
                        )
                    content = _scalar_bytes(node)
                    return info, 1, len(content), content
                rows = int(node.shape[0])
                length = int(np.prod(node.shape, dtype=np.int64)) * node.dtype.itemsize
                return info, rows, length, None
            finally:
                h5.close()

    async def _embedded_chunks(self, path: Path, dataset: str, rows: int) -> AsyncIterator[bytes]:
        for start in range(0, rows, EMBEDDED_CHUNK):
            yield await run_blocking(self._embedded_bytes, path, dataset, start)

    def _embedded_bytes(self, path: Path, dataset: str, start: int) -> bytes:
        with HDF5_LOCK:
            h5 = _open_hdf5(path, "r")
            try:
                node = self._embedded_node(h5, dataset)
                return np.ascontiguousarray(node[start : start + EMBEDDED_CHUNK]).tobytes()
            finally:
                h5.close()

    async def delete_embedded(self, path: Path, dataset: str) -> None:
        self.ensure_not_in_use(path)
        await run_blocking(self._delete_embedded, path, dataset)

    def _delete_embedded(self, path: Path, dataset: str) -> None:
        with HDF5_LOCK:
            h5 = _open_hdf5(path, "a")
            try:
                self._embedded_node(h5, dataset)._f_remove()
            finally:
                h5.close()


def _embedded_info(node: Any) -> EmbeddedFileInfo:
    names = node._v_attrs._v_attrnames

    def attribute(name: str) -> Any:
        return metadata_io.raw_attribute(node, name) if name in names else None

    size, mime, original = attribute("size"), attribute("mime"), attribute("original_name")
    if not isinstance(size, int | float):
        # Scalar byte strings hold one value of ``itemsize`` bytes.
        size = node.nrows if node.shape else node.dtype.itemsize
    return EmbeddedFileInfo(
        dataset_name=node._v_name,
        original_name=original if isinstance(original, str) and original else node._v_name,
        mime=mime if isinstance(mime, str) and mime else "application/octet-stream",
        size=int(size),
    )


def _scalar_bytes(node: Any) -> bytes:
    """The content of a scalar byte string node. PyTables strips trailing NUL
    bytes when reading, so the value is padded back to its stored length, then
    cut to the ``size`` attribute where that is given (an empty file is stored
    as one NUL byte)."""
    raw = np.asarray(node.read(), dtype=node.dtype).tobytes()
    size = metadata_io.raw_attribute(node, "size") if "size" in node._v_attrs._v_attrnames else None
    if isinstance(size, int | float) and not isinstance(size, bool) and 0 <= size <= len(raw):
        raw = raw[: int(size)]
    return raw


async def _split(content: bytes) -> AsyncIterator[bytes]:
    for start in range(0, max(len(content), 1), EMBEDDED_CHUNK):
        yield content[start : start + EMBEDDED_CHUNK]


def _remove_stale_upload(path: Path) -> None:
    """Temporary upload files left behind by a killed process (older than a day)."""
    with contextlib.suppress(OSError):
        if time.time() - path.stat().st_mtime > STALE_UPLOAD_SECONDS:
            path.unlink()


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
