"""FastAPI dependencies of the configuration domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from icoapi.configuration.service import ConfigService


def get_config_service(connection: HTTPConnection) -> ConfigService:
    service: ConfigService = connection.app.state.configs
    return service


ConfigServiceDep = Annotated[ConfigService, Depends(get_config_service)]
