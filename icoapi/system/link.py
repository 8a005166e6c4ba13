"""How the service reaches the CAN bus: any python-can interface, or the built-in
simulator. Built from the settings; icotronic's own configuration files are never
touched because the service creates the bus itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from icoapi.core.settings import Settings

SIMULATOR_INTERFACE = "simulator"


@dataclass(frozen=True)
class CanLinkConfig:
    interface: str
    channel: str
    bitrate: int
    host: str = "127.0.0.1"
    port: int = 29536

    @classmethod
    def from_settings(cls, settings: Settings) -> CanLinkConfig:
        return cls(
            interface=settings.CAN_INTERFACE,
            channel=settings.CAN_CHANNEL,
            bitrate=settings.CAN_BITRATE,
            host=settings.CAN_HOST,
            port=settings.CAN_PORT,
        )

    @property
    def uses_simulator(self) -> bool:
        return self.interface == SIMULATOR_INTERFACE

    def simulator_channel(self) -> str:
        # A fresh in-process channel per link, so two apps in one process (tests)
        # never hear each other's simulator.
        return f"icoapi-simulator-{uuid.uuid4().hex[:12]}"

    def bus_kwargs(self, channel: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``can.Bus``."""
        if self.uses_simulator:
            return {"interface": "virtual", "channel": channel or self.channel}
        kwargs: dict[str, Any] = {
            "interface": self.interface,
            "channel": self.channel,
            "bitrate": self.bitrate,
        }
        if self.interface == "socketcand":
            kwargs.update(host=self.host, port=self.port)
        return kwargs

    def describe(self) -> str:
        if self.uses_simulator:
            return "built-in simulator"
        if self.interface == "socketcand":
            return f"socketcand {self.host}:{self.port} channel {self.channel}"
        return f"{self.interface} channel {self.channel} at {self.bitrate} bit/s"
