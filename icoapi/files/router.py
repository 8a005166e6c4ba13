"""HTTP layer of the measurement files: list, download, delete, analyze, metadata
and embedded files. Every route that takes a file name gets it checked by the
:data:`~icoapi.files.deps.MeasurementFile` dependency."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse

from icoapi.core.errors import error_responses
from icoapi.files.deps import FilesDep, MeasurementFile
from icoapi.files.errors import (
    AccelerationDataNotFoundError,
    FileInUseError,
    FileOperationError,
    InvalidFileNameError,
    InvalidHDF5Error,
    InvalidUploadError,
    MeasurementFileNotFoundError,
    UploadTooLargeError,
)
from icoapi.files.schemas import (
    DeleteResponse,
    EmbeddedDeleteResponse,
    EmbeddedFileInfo,
    FileListResponse,
    ParsedMetadata,
)
from icoapi.files.service import to_ascii
from icoapi.files.upload import receive_files
from icoapi.hdf5.metadata import MetadataTooLargeError
from icoapi.measurement.schemas import Metadata

router = APIRouter(prefix="/files", tags=["File Handling"])

NAME_ERRORS = (InvalidFileNameError, MeasurementFileNotFoundError)
READ_ERRORS = (*NAME_ERRORS, InvalidHDF5Error, FileInUseError)


def _multipart_body(field: str, multiple: bool) -> dict[str, Any]:
    binary = {"type": "string", "format": "binary"}
    schema = {"type": "array", "items": binary} if multiple else binary
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {field: schema},
                        "required": [field],
                    }
                }
            },
        }
    }


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` fallback and the exact name as
    RFC 5987 ``filename*``, so any UTF-8 name fits in the (Latin-1) header."""
    fallback = re.sub(r'[^\x20-\x7e]|["\\;]', "_", to_ascii(filename)).strip()
    stem, dot, suffix = fallback.rpartition(".")
    if not re.search(r"[A-Za-z0-9]", stem if dot else fallback):
        fallback = f"download.{suffix}" if dot and suffix else "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("", response_model=FileListResponse)
async def list_files(files: FilesDep) -> FileListResponse:
    """Measurement files (``*.hdf5``), newest first, and the free space of their volume."""
    return await files.list_files()


@router.post(
    "/analyze",
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {"text/plain": {"example": "upload.hdf5"}},
            "description": "The name the file was stored under.",
        },
        **error_responses(
            InvalidFileNameError, InvalidUploadError, InvalidHDF5Error, UploadTooLargeError
        ),
    },
    openapi_extra=_multipart_body("file", multiple=False),
)
async def upload_file(request: Request, files: FilesDep) -> PlainTextResponse:
    """Upload an HDF5 file (form field ``file``) into the measurement directory.
    Answers with the stored name as plain text (``stem__N.hdf5`` if the name is taken)."""
    uploads = await receive_files(
        request,
        "file",
        files.directory,
        max_file_size=files.max_upload_size,
        check_filename=files.upload_name,
    )
    return PlainTextResponse(await files.store_upload(uploads[0]))


@router.get(
    "/analyze/meta/{name}",
    response_model=ParsedMetadata,
    responses=error_responses(*READ_ERRORS, AccelerationDataNotFoundError),
)
async def analyze_metadata(
    request: Request, path: MeasurementFile, files: FilesDep
) -> ParsedMetadata:
    """Metadata of a measurement file. Embedded files have absolute download paths
    (``/api/v1/files/{name}/embedded/{dataset}``) here."""
    return await files.metadata(path, request.url_for("list_files").path)


@router.get(
    "/analyze/{name}",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/json": {}},
            "description": "Newline-delimited JSON: the metadata, then for each block "
            'of 1000 rows every 10th row and a progress line, then {"progress": 1.0}.',
        },
        **error_responses(*READ_ERRORS, AccelerationDataNotFoundError),
    },
)
async def analyze_file(path: MeasurementFile, files: FilesDep) -> StreamingResponse:
    """Stream a measurement for the chart: metadata first, then every 10th row."""
    return StreamingResponse(await files.analyze(path), media_type="application/json")


META_ERRORS = error_responses(
    *READ_ERRORS, AccelerationDataNotFoundError, FileOperationError, MetadataTooLargeError
)


@router.post("/pre_meta/{name}", response_model=None, responses=META_ERRORS)
async def overwrite_pre_metadata(path: MeasurementFile, files: FilesDep, body: Metadata) -> None:
    """Replace the pre-measurement metadata of a file."""
    await files.overwrite_metadata(path, "pre", body.model_dump(mode="json"))


@router.post("/post_meta/{name}", response_model=None, responses=META_ERRORS)
async def overwrite_post_metadata(path: MeasurementFile, files: FilesDep, body: Metadata) -> None:
    """Replace the post-measurement metadata of a file."""
    await files.overwrite_metadata(path, "post", body.model_dump(mode="json"))


@router.post(
    "/{name}/embedded",
    response_model=list[EmbeddedFileInfo],
    responses=error_responses(
        *READ_ERRORS, InvalidUploadError, UploadTooLargeError, FileOperationError
    ),
    openapi_extra=_multipart_body("files", multiple=True),
)
async def upload_embedded_files(
    request: Request, path: MeasurementFile, files: FilesDep
) -> list[EmbeddedFileInfo]:
    """Embed one or more files (form field ``files``) in a measurement file."""
    await files.check_embeddable(path)
    uploads = await receive_files(
        request,
        "files",
        files.directory,
        max_file_size=files.max_embedded_size,
        max_files=files.max_embedded_files,
    )
    return await files.add_embedded(path, uploads)


@router.get(
    "/{name}/embedded/{dataset_name}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file."},
        **error_responses(*READ_ERRORS),
    },
)
async def download_embedded_file(
    path: MeasurementFile, dataset_name: str, files: FilesDep
) -> StreamingResponse:
    """Download an embedded file with its stored MIME type and original name."""
    download = await files.open_embedded(path, dataset_name)
    return StreamingResponse(
        download.chunks,
        media_type=download.info.mime,
        headers={
            "Content-Disposition": content_disposition(download.info.original_name),
            "Content-Length": str(download.length),
        },
    )


@router.delete(
    "/{name}/embedded/{dataset_name}",
    response_model=EmbeddedDeleteResponse,
    responses=error_responses(*READ_ERRORS, FileOperationError),
)
async def delete_embedded_file(
    path: MeasurementFile, dataset_name: str, files: FilesDep
) -> EmbeddedDeleteResponse:
    """Remove an embedded file from a measurement file."""
    return await files.delete_embedded(path, dataset_name)


@router.get(
    "/{name}",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/x-hdf5": {}}, "description": "The file."},
        **error_responses(*NAME_ERRORS),
    },
)
async def download_file(path: MeasurementFile) -> FileResponse:
    """Download a measurement file (supports HTTP range requests)."""
    return FileResponse(path, media_type="application/x-hdf5", filename=path.name)


@router.delete(
    "/{name}",
    response_model=DeleteResponse,
    responses=error_responses(*NAME_ERRORS, FileInUseError, FileOperationError),
)
async def delete_file(path: MeasurementFile, files: FilesDep) -> DeleteResponse:
    """Delete a measurement file. Refused for a file a running measurement writes."""
    return await files.delete(path)


@router.api_route("/{name:path}", methods=["GET", "POST", "DELETE"], include_in_schema=False)
async def invalid_file_path(name: str) -> None:
    """Paths under /files that match no route: names with (encoded) slashes, ``..``
    segments or absolute paths arrive here and get a 400 instead of a bare 404."""
    raise InvalidFileNameError()
