"""Assembles the system state and pushes it to the ``/state`` clients.

Producers publish events on the :class:`EventBus`; this service turns them into
pushes. Several events in the same loop iteration produce one push, and a push
whose content equals the previous one is not sent, so clients see one message
per real change. Clients are :class:`MessageSink` handles; the state router
owns the sockets behind them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from icoapi import __version__
from icoapi.core.disk import disk_capacity
from icoapi.core.events import Event, EventBus, PostMetaCompleted, PostMetaRequested
from icoapi.core.paths import AppPaths
from icoapi.core.sinks import MessageSink
from icoapi.dataspace.schemas import CloudState
from icoapi.measurement.schemas import MeasurementStatus, MeasurementStatusSummary
from icoapi.state.schemas import (
    ReportedLinkState,
    SocketMessage,
    SystemStateModel,
)
from icoapi.system.service import ICOSystem

logger = logging.getLogger(__name__)

ANNOUNCEMENTS: dict[type[Event], str] = {
    PostMetaRequested: "post_meta_request",
    PostMetaCompleted: "post_meta_completed",
}


class StateService:
    def __init__(
        self,
        system: ICOSystem,
        measurement_status: Callable[[], MeasurementStatus],
        paths: AppPaths,
        events: EventBus,
        cloud_state: Callable[[], CloudState] = CloudState,
        access_control: bool = False,
    ) -> None:
        self.system = system
        self.measurement_status = measurement_status
        self.paths = paths
        self.cloud_state = cloud_state
        self.clients: set[MessageSink] = set()
        self.access_control = access_control
        self._push_scheduled = False
        self._last_pushed: str | None = None
        self._unsubscribe = events.subscribe(self._on_event)

    def snapshot(self) -> SystemStateModel:
        system = self.system.snapshot()
        status = self.measurement_status()
        return SystemStateModel(
            can_ready=self.system.can_ready,
            disk_capacity=disk_capacity(self.paths.measurements),
            measurement_status=MeasurementStatusSummary.of(status),
            cloud=self.cloud_state(),
            link_state=ReportedLinkState.of(system),
            link_error=system.link_error,
            can_interface=system.can_interface,
            device=system.device,
            disk=status.disk,
            measuring=system.measuring,
            access_control=self.access_control,
            version=__version__,
        )

    def state_message(self) -> str:
        return SocketMessage(message="state", data=self.snapshot()).model_dump_json()

    def _on_event(self, event: Event) -> None:
        announcement = ANNOUNCEMENTS.get(type(event))
        if announcement is not None:
            self._broadcast(SocketMessage(message=announcement).model_dump_json())
            return
        if self._push_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # published outside the loop (shutdown): nobody to tell
        self._push_scheduled = True
        loop.call_soon(self._push)

    def _push(self) -> None:
        self._push_scheduled = False
        message = self.state_message()
        if message == self._last_pushed:
            return
        self._last_pushed = message
        self._broadcast(message)

    def _broadcast(self, text: str) -> None:
        for client in list(self.clients):
            client.offer(text)

    def add_client(self, client: MessageSink) -> None:
        """Push to ``client`` from now on, starting with the current state."""
        self.clients.add(client)
        client.offer(self.state_message())
        if self.measurement_status().post_meta_pending is not None:
            # A browser opened (or reopened) while a measurement waits for its
            # post-metadata: it must show the dialog too, or nobody can finish it.
            client.offer(SocketMessage(message=ANNOUNCEMENTS[PostMetaRequested]).model_dump_json())

    def remove_client(self, client: MessageSink) -> None:
        self.clients.discard(client)

    def answer(self, client: MessageSink, text: str) -> None:
        """Answer one message a client sent."""
        try:
            request = SocketMessage.model_validate(json.loads(text))
        except (ValueError, TypeError) as error:
            detail = f'Invalid message: expected JSON like {{"message": "get_state"}} ({error})'
            client.offer(SocketMessage(message="error", data={"detail": detail}).model_dump_json())
            return
        if request.message == "get_state":
            client.offer(self.state_message())
        # Other messages (e.g. the web client's "local_storage_state") are
        # informational and ignored.

    async def close(self) -> None:
        self._unsubscribe()
        clients = list(self.clients)
        self.clients.clear()
        for client in clients:
            client.close_after_pending()
        for client in clients:
            with contextlib.suppress(Exception):
                await client.wait_closed(timeout=1)
