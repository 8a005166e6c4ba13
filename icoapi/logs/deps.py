"""FastAPI dependencies of the log domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from icoapi.logs.service import LogService


def get_log_service(connection: HTTPConnection) -> LogService:
    service: LogService = connection.app.state.logs
    return service


LogServiceDep = Annotated[LogService, Depends(get_log_service)]
