"""HTTP and WebSocket layer of the log domain."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, WebSocket
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect

from icoapi.core.errors import error_responses
from icoapi.core.http import content_disposition
from icoapi.core.websocket import receive_until_disconnect
from icoapi.logs.deps import LogServiceDep
from icoapi.logs.errors import InvalidLogPathError, LogNotFoundError, LogReadError, NoLogFilesError
from icoapi.logs.schemas import LogListResponse, LogView
from icoapi.logs.service import MAX_VIEW_LINES

router = APIRouter(prefix="/logs", tags=["Logs"])

# A log file (current or rotated): a plain name ending in .log or .log.<n>.
LOG_FILE_NAME_PATTERN = r"^[^/\\:\x00-\x1f]+\.log(?:\.[0-9]+)?$"

FILE_ERRORS = error_responses(InvalidLogPathError, LogNotFoundError, LogReadError)


@router.get("", response_model=LogListResponse)
async def list_logs(logs: LogServiceDep) -> LogListResponse:
    """The log files (current and rotated) with size and first and last time."""
    return await logs.list_files()


@router.get("/view", response_model=LogView, responses=FILE_ERRORS)
async def view_log(
    logs: LogServiceDep,
    file: str = Query(
        description="Log file name, e.g. icodaq.log.",
        json_schema_extra={"pattern": LOG_FILE_NAME_PATTERN},
    ),
    limit: int = Query(
        0, ge=0, le=MAX_VIEW_LINES, description="Only the last N lines; 0 for the whole file."
    ),
) -> LogView:
    """The content of a log file (at most its last 10 MiB)."""
    return await logs.view(file, limit)


@router.get(
    "/download/{file:path}",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}}, **FILE_ERRORS},
)
async def download_log(
    logs: LogServiceDep,
    file: str = PathParam(
        description="Log file name, e.g. icodaq.log.",
        json_schema_extra={"pattern": LOG_FILE_NAME_PATTERN},
    ),
) -> StreamingResponse:
    """One log file as a download."""
    chunks, size = await logs.open_download(file)
    return StreamingResponse(
        chunks,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": content_disposition(file), "Content-Length": str(size)},
    )


@router.get(
    "/all",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}, **error_responses(NoLogFilesError)},
)
async def download_all_logs(logs: LogServiceDep) -> StreamingResponse:
    """Every log file in one ZIP archive, built while it is sent."""
    return StreamingResponse(
        await logs.zip_all(),
        media_type="application/zip",
        headers={"Content-Disposition": content_disposition("logs.zip")},
    )


async def _send_lines(websocket: WebSocket, lines: AsyncIterator[str]) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        async for line in lines:
            await websocket.send_text(line)


@router.websocket("/stream")
async def stream_logs(websocket: WebSocket, logs: LogServiceDep) -> None:
    """Live log: one text frame per new log line, in the log file's format.
    (Cross-site pages are refused by the request guard, see icoapi.access.guard.)"""
    subscription = logs.subscribe()  # before accept: no line after connecting is lost
    try:
        await websocket.accept()
        # Sending waits for log lines and receiving waits for the client to leave;
        # whichever ends first ends the other.
        tasks = {
            asyncio.create_task(_send_lines(websocket, logs.follow(subscription))),
            asyncio.create_task(receive_until_disconnect(websocket)),
        }
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            # asyncio.wait (not gather): it never swallows or re-labels a
            # cancellation of this handler itself.
            await asyncio.wait(tasks)
    finally:
        subscription.close()
