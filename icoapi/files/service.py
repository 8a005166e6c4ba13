"""Measurement files: listing, deletion, uploads, analysis, metadata and embedded files.

All file and HDF5 work runs in worker threads. Every file is opened through
:func:`icoapi.files.access.opened`, so the hostile-file check
(:mod:`icoapi.hdf5.validation`) passes it before PyTables sees it; the verdicts
are cached per file version (:class:`~icoapi.hdf5.validation.FileVerdicts`).

Names follow the one policy of :mod:`icoapi.hdf5.names`;
:meth:`MeasurementFileService.resolve` turns a requested name into a path inside
the measurement directory or raises.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

from icoapi.core.disk import GIB
from icoapi.core.tasks import run_blocking
from icoapi.core.uploads import ReceivedFile, ReceiveFiles, UploadRules
from icoapi.files.access import opened, refused_detail
from icoapi.files.analyze import DEFAULT_POINTS, AnalyzeStream
from icoapi.files.embedded import EmbeddedDownload, EmbeddedFiles, embedded_details
from icoapi.files.errors import (
    FileInUseError,
    FileOperationError,
    InvalidFileNameError,
    InvalidHDF5Error,
    MeasurementFileNotFoundError,
)
from icoapi.files.listing import CloudStatusProvider, FolderListing, SharedRound
from icoapi.files.schemas import (
    EmbeddedFileInfo,
    HDF5NodeInfo,
    ParsedMetadata,
    StoredSensor,
)
from icoapi.hdf5 import metadata as metadata_io
from icoapi.hdf5.names import (
    InvalidNameError,
    is_measurement_file_name,
    numbered_names,
    upload_file_name,
)
from icoapi.hdf5.reader import acceleration_document
from icoapi.hdf5.validation import FileVerdicts

__all__ = ["CloudStatusProvider", "EmbeddedDownload", "MeasurementFileService"]

logger = logging.getLogger(__name__)

MIB = 1024**2


def check_measurement_name(name: str) -> None:
    """Accept only a plain file name ending in ``.hdf5`` (:mod:`icoapi.hdf5.names`).

    :raises InvalidFileNameError: for path separators (also percent-encoded),
        ``..``, NUL/control characters, drive letters, hidden names and other suffixes."""
    if not is_measurement_file_name(name):
        if not name.endswith(".hdf5"):
            raise InvalidFileNameError(
                "Invalid file name: only measurement files (*.hdf5) are handled here."
            )
        raise InvalidFileNameError()


class MeasurementFileService:
    """The measurement directory and the files in it.

    Args:
        directory: the measurement directory.
        files_in_use: names of the files a running measurement writes; these
            cannot be read, deleted or changed.
        max_upload_size: limit of ``POST /files/analyze`` in bytes.
        max_embedded_size: limit per embedded file in bytes.
        max_embedded_files: files per embed request.
        cloud_status: the dataspace's status of listed files (none: not_uploaded).
        analyze_points: values per channel above which the analyze stream is an envelope.
        verdicts: the hostile-file check's cache (shared with other readers).
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
        analyze_points: int = DEFAULT_POINTS,
        verdicts: FileVerdicts | None = None,
    ) -> None:
        self.directory = directory
        self.files_in_use = files_in_use
        self.max_upload_size = max_upload_size
        self.max_embedded_files = max_embedded_files
        self.analyze_points = analyze_points
        self.verdicts = verdicts or FileVerdicts()
        self.embedded = EmbeddedFiles(self.verdicts, max_embedded_size)
        self.listing = FolderListing(directory, self.verdicts, files_in_use, cloud_status)
        self._listings = SharedRound(self._render_listing)

    @property
    def max_embedded_size(self) -> int:
        return self.embedded.max_size

    # -- names -----------------------------------------------------------------

    def resolve(self, name: str) -> Path:
        """The path of an existing measurement file named ``name``.

        :raises InvalidFileNameError: bad name, a link that leads outside the
            directory, or a link loop.
        :raises MeasurementFileNotFoundError: no such file."""
        check_measurement_name(name)
        path = self.directory / name
        try:
            if path.is_symlink() and path.resolve(strict=True).parent != self.directory.resolve():
                raise InvalidFileNameError(
                    "Invalid file name: the file lies outside the measurement directory."
                )
            if not path.is_file():
                raise MeasurementFileNotFoundError()
        except FileNotFoundError:
            raise MeasurementFileNotFoundError() from None
        except (OSError, RuntimeError):  # a link loop (ELOOP; RuntimeError before 3.13)
            raise InvalidFileNameError(
                "Invalid file name: the name is a symbolic link that never reaches a file."
            ) from None
        return path

    def ensure_not_in_use(self, path: Path) -> None:
        """:raises FileInUseError: if a running measurement writes this file."""
        in_use = self.files_in_use()
        if not in_use:
            return
        names = {path.name}
        with contextlib.suppress(OSError, RuntimeError):
            names.add(path.resolve().name)
        if names & in_use:
            raise FileInUseError(f"File '{path.name}' is being written by a running measurement.")

    # -- listing and deletion ----------------------------------------------------

    async def list_files(self) -> bytes:
        """The JSON of ``GET /files`` (concurrent requests share listings)."""
        return await self._listings.get()

    async def _render_listing(self) -> bytes:
        return await run_blocking(self.listing.render)

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
        document = await run_blocking(self._metadata_document, path, download_base)
        return ParsedMetadata.model_validate(document)

    async def analyze(self, path: Path) -> AsyncIterator[bytes]:
        """The analyze stream (NDJSON, see :mod:`icoapi.files.analyze`). Errors about
        the file are raised here, before the stream starts."""
        self.ensure_not_in_use(path)
        stream = AnalyzeStream(path, self.verdicts, self.analyze_points)
        document = await run_blocking(self._metadata_document, path, "files")
        nrows, columns = await run_blocking(stream.layout)
        header = json.dumps(document, ensure_ascii=False).encode("utf-8") + b"\n"
        return stream.lines(header, nrows, columns)

    def _metadata_document(self, path: Path, download_base: str) -> dict[str, Any]:
        with opened(path, self.verdicts) as reader:
            node = acceleration_document(reader, pictures="merge")
            pictures = {
                f"{prefix}__{key}": list(values.values())
                for prefix, by_key in reader.pictures().items()
                for key, values in by_key.items()
            }
            return {
                "acceleration": HDF5NodeInfo.model_validate(node).model_dump(),
                "pictures": pictures,
                "sensors": [
                    StoredSensor.model_validate(row).model_dump() for row in reader.sensors()
                ],
                "embedded_files": [
                    e.model_dump() for e in embedded_details(reader, path.name, download_base)
                ],
            }

    # -- metadata ------------------------------------------------------------------

    async def overwrite_metadata(
        self, path: Path, prefix: Literal["pre", "post"], metadata: dict[str, Any]
    ) -> None:
        metadata_io.check_metadata_size(metadata)
        self.ensure_not_in_use(path)
        await run_blocking(self._overwrite_metadata, path, prefix, metadata)

    def _overwrite_metadata(
        self, path: Path, prefix: Literal["pre", "post"], metadata: dict[str, Any]
    ) -> None:
        with opened(path, self.verdicts, "a") as reader:
            reader.write_metadata(prefix, metadata)

    # -- uploads -------------------------------------------------------------------

    @staticmethod
    def upload_name(filename: str) -> str:
        """The stored name of an upload (:func:`icoapi.hdf5.names.upload_file_name`).

        :raises InvalidFileNameError: not ``*.hdf5``, or no usable characters."""
        try:
            return upload_file_name(filename)
        except InvalidNameError as error:
            raise InvalidFileNameError(str(error)) from None

    async def store_upload(self, receive: ReceiveFiles) -> str:
        """Receive one measurement file, check it, and move it into the measurement
        directory; returns its name (``stem__N.hdf5`` if the name is taken). The
        temporary file is removed on error.

        :raises InvalidFileNameError: the name does not end in ``.hdf5`` (checked
            before any data is stored).
        :raises InvalidHDF5Error: not an HDF5 file, or refused by the hostile-file
            check (the detail says why)."""
        rules = UploadRules(
            self.directory, self.max_upload_size, max_files=1, check_filename=self.upload_name
        )
        [upload] = await receive(rules)
        try:
            name = self.upload_name(upload.filename)
            return await run_blocking(self._store_upload, upload, name)
        finally:
            await run_blocking(_remove, upload.path)

    def _store_upload(self, upload: ReceivedFile, name: str) -> str:
        verdict = self.verdicts.verdict(upload.path)
        if verdict.problem == "not an HDF5 file":
            raise InvalidHDF5Error()
        if verdict.problem is not None:
            raise InvalidHDF5Error(refused_detail(verdict.problem))
        for candidate in numbered_names(name):
            target = self.directory / candidate
            try:
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            try:
                os.replace(upload.path, target)
            except OSError as error:
                _remove(target)
                raise FileOperationError(f"Failed to store the upload: {error}") from error
            logger.info("Stored uploaded measurement file %s", candidate)
            return candidate
        raise FileOperationError("No free name for the uploaded file.")

    # -- embedded files --------------------------------------------------------------

    async def check_embeddable(self, path: Path) -> None:
        """Refuse before the upload is received: in-use, refused and non-HDF5 files."""
        self.ensure_not_in_use(path)
        await run_blocking(self.embedded.check, path)

    async def embed(self, path: Path, receive: ReceiveFiles) -> list[EmbeddedFileInfo]:
        """Receive files and embed them in the measurement file ``path``. In-use
        and non-HDF5 files are refused before the upload is received."""
        await self.check_embeddable(path)
        uploads = await receive(
            UploadRules(self.directory, self.max_embedded_size, max_files=self.max_embedded_files)
        )
        try:
            self.ensure_not_in_use(path)
            return await run_blocking(self.embedded.add, path, uploads)
        finally:
            for upload in uploads:
                await run_blocking(_remove, upload.path)

    async def open_embedded(self, path: Path, dataset: str) -> EmbeddedDownload:
        """Info and byte chunks of an embedded file (errors raised before streaming)."""
        self.ensure_not_in_use(path)
        return await self.embedded.open(path, dataset)

    async def delete_embedded(self, path: Path, dataset: str) -> None:
        self.ensure_not_in_use(path)
        await run_blocking(self.embedded.remove, path, dataset)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
