"""FastAPI dependencies of the hardware domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from icoapi.system.service import ICOSystem


def get_system(connection: HTTPConnection) -> ICOSystem:
    system: ICOSystem = connection.app.state.system
    return system


SystemDep = Annotated[ICOSystem, Depends(get_system)]
