"""HTTP layer of the state domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect
from starlette.requests import HTTPConnection

from icoapi import __version__
from icoapi.core.websocket import WebSocketClient, receive_text
from icoapi.state.schemas import Health, SystemStateModel
from icoapi.state.service import StateService

router = APIRouter(tags=["General"])

# State messages are small and rare: a client that leaves 32 unread and keeps
# missing the next 64 is gone.
QUEUE_SIZE = 32
MAX_STALLED = 64


def get_state_service(connection: HTTPConnection) -> StateService:
    service: StateService = connection.app.state.state
    return service


StateDep = Annotated[StateService, Depends(get_state_service)]


@router.get("/state", response_model=SystemStateModel)
async def get_state(state: StateDep) -> SystemStateModel:
    """Snapshot of the CAN link, the connected device, the measurement and the disk."""
    return state.snapshot()


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: answers as long as the service runs, with or without hardware."""
    return Health(version=__version__)


@router.websocket("/state")
async def state_socket(websocket: WebSocket, state: StateDep) -> None:
    """Pushes ``{"message": "state", "data": ...}`` on every change; answers
    ``{"message": "get_state"}``; announces ``post_meta_request`` (again to every
    client that connects while post-measurement metadata is pending) and
    ``post_meta_completed``."""
    await websocket.accept()
    client = WebSocketClient(websocket, queue_size=QUEUE_SIZE, max_stalled=MAX_STALLED)
    state.add_client(client)
    try:
        while not client.closed.is_set():
            text = await receive_text(websocket)
            if text is None:
                break  # a binary frame: closed with 1003
            state.answer(client, text)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client left
    finally:
        state.remove_client(client)
        client.close_after_pending()
