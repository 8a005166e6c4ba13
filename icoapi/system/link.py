"""How the service reaches the CAN bus: any python-can interface, by name. Built
from the settings; icotronic's own configuration files are never touched because
the service creates the bus itself.

The built-in simulator is one such interface (``icosim``, a python-can plug-in
of this package); ``simulator`` is an older name for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from icoapi.core.settings import Settings

INTERFACE_ALIASES = {"simulator": "icosim"}
"""Interface names the settings accept besides python-can's own."""


@dataclass(frozen=True)
class CanLinkConfig:
    interface: str
    channel: str
    bitrate: int
    host: str = "127.0.0.1"
    port: int = 29536
    options: Mapping[str, Any] = field(default_factory=dict)
    """Further ``can.Bus`` arguments the interface understands (e.g. the
    simulator's ``config``); given by whoever builds the app, not by settings."""

    @classmethod
    def from_settings(
        cls, settings: Settings, options: Mapping[str, Any] | None = None
    ) -> CanLinkConfig:
        return cls(
            interface=INTERFACE_ALIASES.get(settings.CAN_INTERFACE, settings.CAN_INTERFACE),
            channel=settings.CAN_CHANNEL,
            bitrate=settings.CAN_BITRATE,
            host=settings.CAN_HOST,
            port=settings.CAN_PORT,
            options=dict(options or {}),
        )

    def bus_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``can.Bus``."""
        kwargs: dict[str, Any] = {
            "interface": self.interface,
            "channel": self.channel,
            "bitrate": self.bitrate,
            **self.options,
        }
        if self.interface == "socketcand":
            kwargs.update(host=self.host, port=self.port)
        return kwargs

    def describe(self) -> str:
        if self.interface == "socketcand":
            return f"socketcand {self.host}:{self.port} channel {self.channel}"
        return f"{self.interface} channel {self.channel} at {self.bitrate} bit/s"
