"""HTTP layer of the configuration domain: download, upload, backups, restore."""

from __future__ import annotations

from collections.abc import Sequence
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
from icoapi.configuration.kinds import ConfigKind
from icoapi.configuration.schemas import (
    ConfigFileInfoHeader,
    ConfigResponse,
    ConfigRestoreRequest,
    DetailResponse,
)
from icoapi.core.errors import IcoapiError, error_responses

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


def _add_routes(router: APIRouter, kind: ConfigKind) -> None:
    """``GET`` and ``POST /config/<endpoint>`` for one kind of configuration file."""
    # Only a masked download parses the file, and so can find it unreadable.
    download_errors: tuple[type[IcoapiError], ...] = (ConfigFileNotFoundError,)
    if kind.holds_secrets:
        download_errors += (ConfigUnreadableError,)

    async def download(service: ConfigServiceDep) -> Response:
        if kind.holds_secrets:
            return _yaml_response(await service.read_masked(kind), kind)
        return _yaml_response(await service.read(kind), kind)

    async def upload(
        service: ConfigServiceDep,
        file: UploadFile = File(description=f"{kind.filename} content"),
    ) -> ConfigFileInfoHeader:
        return await service.upload(kind, file.content_type, file.read)

    router.add_api_route(
        f"/{kind.endpoint}",
        download,
        methods=["GET"],
        name=f"get_{kind.stem}_config",
        description=kind.download_summary,
        response_class=Response,
        responses={**YAML_RESPONSE, **error_responses(*download_errors)},
    )
    router.add_api_route(
        f"/{kind.endpoint}",
        upload,
        methods=["POST"],
        name=f"upload_{kind.stem}_config",
        description=kind.upload_summary,
        response_model=ConfigFileInfoHeader,
        responses=UPLOAD_ERRORS,
    )


def config_router(kinds: Sequence[ConfigKind]) -> APIRouter:
    """The configuration routes: download and upload for each kind, backups, restore."""
    router = APIRouter(prefix="/config", tags=["Configuration"])
    for kind in kinds:
        _add_routes(router, kind)
    router.add_api_route(
        "/backup",
        list_config_files,
        methods=["GET"],
        response_model=ConfigResponse,
        responses=error_responses(ConfigListError),
    )
    router.add_api_route(
        "/restore",
        restore_config,
        methods=["PUT"],
        response_model=DetailResponse,
        responses=error_responses(
            InvalidConfigRestoreError,
            ConfigBackupNotFoundError,
            ConfigSchemaError,
            ConfigRestoreError,
        ),
    )
    return router


async def list_config_files(service: ConfigServiceDep) -> ConfigResponse:
    """The configuration files with their headers and backups (newest first). A file
    whose header cannot be read has ``info_header: null`` and an ``error``."""
    return await service.list_files()


async def restore_config(service: ConfigServiceDep, body: ConfigRestoreRequest) -> DetailResponse:
    """Make a backup the current file again. The backup is validated first; the
    current file becomes a new backup."""
    await service.restore(body.filename, body.backup_filename)
    return DetailResponse(detail="Configuration restored successfully.")
