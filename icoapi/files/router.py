"""HTTP layer of the measurement files: list, download, delete, analyze, metadata
and embedded files. Every route that takes a file name gets it checked by the
:data:`~icoapi.files.deps.MeasurementFile` dependency."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.routing import APIRoute

from icoapi.core.errors import error_responses
from icoapi.core.http import content_disposition
from icoapi.core.multipart import receive_files
from icoapi.files.deps import DATASET_NAME_PATTERN, FilesDep, MeasurementFile
from icoapi.files.embedded import to_ascii
from icoapi.files.errors import (
    AccelerationDataNotFoundError,
    EmbeddedFileTooLargeError,
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
from icoapi.hdf5.metadata import MetadataTooLargeError
from icoapi.measurement.schemas import Metadata

router = APIRouter(prefix="/files", tags=["File Handling"])

DatasetName = Annotated[
    str,
    PathParam(
        description="Name of the embedded file's dataset (from the analyze metadata).",
        json_schema_extra={"pattern": DATASET_NAME_PATTERN},
    ),
]
NAME_ERRORS = (InvalidFileNameError, MeasurementFileNotFoundError)
ANALYZE_STREAM = (
    "Newline-delimited JSON. Line 1: the metadata (as `GET /files/analyze/meta/{name}`, "
    "download paths relative). Then chunks of at most 1000 rows, "
    '`{"name", "counter": [...], "timestamp": [µs...], "datasets": [{"name", "data": [...]}]}`, '
    'each followed by `{"progress": 0..1}` (share of the file\'s rows covered), and '
    'finally `{"progress": 1.0}`. A file of at most `ICOAPI_ANALYZE_POINTS` rows '
    "(default 200,000) is sent row by row. A longer one is sent as a min/max envelope: "
    "the rows are cut into `ICOAPI_ANALYZE_POINTS / (2 × channels)` equal buckets, and "
    "each bucket contributes the rows holding the minimum and the maximum of each "
    "channel, in time order, each with its own counter and timestamp: every peak is "
    "kept with its exact value and time, and no channel gets more than "
    "`ICOAPI_ANALYZE_POINTS` values however long the file is. Values are float32 in "
    "their shortest decimal form; NaN is `null`."
)
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


@router.get("", response_model=FileListResponse, response_class=Response)
async def list_files(files: FilesDep) -> Response:
    """Measurement files (``*.hdf5``), newest first, and the free space of their volume.
    A file the hostile-file check refuses is listed with ``invalid`` (the reason)
    and never opened."""
    # The body is built from cached JSON fragments (see icoapi.files.listing).
    return Response(await files.list_files(), media_type="application/json")


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
    return PlainTextResponse(await files.store_upload(partial(receive_files, request, "file")))


@router.api_route("/analyze", methods=["GET", "DELETE"], include_in_schema=False)
async def analyze_other_methods() -> None:
    """``/files/analyze`` is the upload, not a file named "analyze": 405, not the
    400 that ``/files/{name}`` would give."""
    raise HTTPException(405, "Method Not Allowed", {"Allow": "POST"})


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
            "description": ANALYZE_STREAM,
        },
        **error_responses(*READ_ERRORS, AccelerationDataNotFoundError),
    },
)
async def analyze_file(path: MeasurementFile, files: FilesDep) -> StreamingResponse:
    """Stream a measurement for the chart: metadata first, then the rows (every row
    of a short file, a min/max envelope of a long one; see the 200 response)."""
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
    return await files.embed(path, partial(receive_files, request, "files"))


@router.get(
    "/{name}/embedded/{dataset_name}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file."},
        **error_responses(*READ_ERRORS, EmbeddedFileTooLargeError),
    },
)
async def download_embedded_file(
    path: MeasurementFile, dataset_name: DatasetName, files: FilesDep
) -> StreamingResponse:
    """Download an embedded file with its stored MIME type and original name."""
    download = await files.open_embedded(path, dataset_name)
    return StreamingResponse(
        download.chunks,
        media_type=download.info.mime,
        headers={
            "Content-Disposition": content_disposition(
                download.info.original_name, to_ascii(download.info.original_name)
            ),
            "Content-Length": str(download.length),
        },
    )


@router.delete(
    "/{name}/embedded/{dataset_name}",
    response_model=EmbeddedDeleteResponse,
    responses=error_responses(*READ_ERRORS, FileOperationError),
)
async def delete_embedded_file(
    path: MeasurementFile, dataset_name: DatasetName, files: FilesDep
) -> EmbeddedDeleteResponse:
    """Remove an embedded file from a measurement file."""
    await files.delete_embedded(path, dataset_name)
    return EmbeddedDeleteResponse(file_name=path.name, dataset_name=dataset_name)


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
    await files.delete(path)
    return DeleteResponse(detail=f"File '{path.name}' deleted successfully")


@router.api_route("/{name:path}", methods=["GET", "POST", "DELETE"], include_in_schema=False)
async def invalid_file_path(name: str) -> None:
    """Paths under /files that match no route: names with (encoded) slashes, ``..``
    segments or absolute paths arrive here and get a 400 instead of a bare 404.
    A path that a route serves with other methods gets 405, as anywhere else."""
    path = f"{router.prefix}/{name}"
    allowed = {
        method
        for route in router.routes
        if isinstance(route, APIRoute)
        and route.endpoint is not invalid_file_path
        and route.path_regex.match(path)
        for method in route.methods or ()
    }
    if allowed:
        raise HTTPException(405, "Method Not Allowed", {"Allow": ", ".join(sorted(allowed))})
    raise InvalidFileNameError()
