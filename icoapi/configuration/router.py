"""HTTP layer of the configuration domain: download, upload, backups, restore."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import Response

from icoapi.configuration.deps import ConfigServiceDep
from icoapi.configuration.errors import (
    ConfigBackupNotFoundError,
    ConfigFileNotFoundError,
    ConfigListError,
    ConfigRestoreError,
    ConfigSchemaError,
    ConfigTooLargeError,
    ConfigUnreadableError,
    ConfigWriteError,
    InvalidConfigRestoreError,
    InvalidYamlError,
    UnsupportedConfigMediaError,
)
from icoapi.configuration.schemas import (
    ConfigFileInfoHeader,
    ConfigResponse,
    ConfigRestoreRequest,
    DetailResponse,
)
from icoapi.configuration.service import DATASPACE, METADATA, SENSORS, ConfigKind
from icoapi.core.errors import error_responses

router = APIRouter(prefix="/config", tags=["Configuration"])

YAML_MEDIA_TYPE = "application/x-yaml"
YAML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        # The document is a YAML mapping (uploads are validated as such).
        "content": {YAML_MEDIA_TYPE: {"schema": {"type": "object"}}},
        "description": "The YAML file.",
    }
}
UPLOAD_ERRORS = error_responses(
    InvalidYamlError,
    ConfigTooLargeError,
    UnsupportedConfigMediaError,
    ConfigSchemaError,
    ConfigWriteError,
)


def _yaml_response(content: bytes, kind: ConfigKind) -> Response:
    return Response(
        content,
        media_type=YAML_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{kind.filename}"',
            # The web client reads metadata.yaml on every page visit: never stale.
            "Cache-Control": "no-store",
        },
    )


async def _upload(
    service: ConfigServiceDep, kind: ConfigKind, file: UploadFile
) -> ConfigFileInfoHeader:
    return await service.upload(kind, file.content_type, file.read)


@router.get(
    "/meta",
    response_class=Response,
    responses={**YAML_RESPONSE, **error_responses(ConfigFileNotFoundError)},
)
async def get_metadata_config(service: ConfigServiceDep) -> Response:
    """``metadata.yaml``: the pre- and post-measurement metadata profiles."""
    return _yaml_response(await service.read(METADATA), METADATA)


@router.post("/meta", response_model=ConfigFileInfoHeader, responses=UPLOAD_ERRORS)
async def upload_metadata_config(
    service: ConfigServiceDep, file: UploadFile = File(description="metadata.yaml content")
) -> ConfigFileInfoHeader:
    """Replace ``metadata.yaml`` (the old file is kept as a backup)."""
    return await _upload(service, METADATA, file)


@router.get(
    "/sensors",
    response_class=Response,
    responses={**YAML_RESPONSE, **error_responses(ConfigFileNotFoundError)},
)
async def get_sensors_config(service: ConfigServiceDep) -> Response:
    """``sensors.yaml``: sensor definitions and holder configurations."""
    return _yaml_response(await service.read(SENSORS), SENSORS)


@router.post("/sensors", response_model=ConfigFileInfoHeader, responses=UPLOAD_ERRORS)
async def upload_sensors_config(
    service: ConfigServiceDep, file: UploadFile = File(description="sensors.yaml content")
) -> ConfigFileInfoHeader:
    """Replace ``sensors.yaml``; ``GET /sensor`` and new measurements use it at once."""
    return await _upload(service, SENSORS, file)


@router.get(
    "/dataspace",
    response_class=Response,
    responses={**YAML_RESPONSE, **error_responses(ConfigFileNotFoundError, ConfigUnreadableError)},
)
async def get_dataspace_config(service: ConfigServiceDep) -> Response:
    """``dataspace.yaml`` with passwords, tokens and secrets shown as ``***``."""
    return _yaml_response(await service.read_masked(DATASPACE), DATASPACE)


@router.post("/dataspace", response_model=ConfigFileInfoHeader, responses=UPLOAD_ERRORS)
async def upload_dataspace_config(
    service: ConfigServiceDep, file: UploadFile = File(description="dataspace.yaml content")
) -> ConfigFileInfoHeader:
    """Replace ``dataspace.yaml``; the data space connection is set up again."""
    return await _upload(service, DATASPACE, file)


@router.get("/backup", response_model=ConfigResponse, responses=error_responses(ConfigListError))
async def list_config_files(service: ConfigServiceDep) -> ConfigResponse:
    """The configuration files with their headers and backups (newest first). A file
    whose header cannot be read has ``info_header: null`` and an ``error``."""
    return await service.list_files()


@router.put(
    "/restore",
    response_model=DetailResponse,
    responses=error_responses(
        InvalidConfigRestoreError,
        ConfigBackupNotFoundError,
        ConfigSchemaError,
        ConfigRestoreError,
    ),
)
async def restore_config(service: ConfigServiceDep, body: ConfigRestoreRequest) -> DetailResponse:
    """Make a backup the current file again. The backup is validated first; the
    current file becomes a new backup."""
    await service.restore(body.filename, body.backup_filename)
    return DetailResponse(detail="Configuration restored successfully.")
