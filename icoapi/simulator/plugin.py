"""The simulator as a python-can interface: ``can.Bus(interface="icosim", channel=...)``.

python-can finds interfaces of other packages through the entry point group
``can.interface``; ``pyproject.toml`` registers :class:`SimulatorBus` there as
``icosim``. A program that opens such a bus gets a host adapter on a simulated
CAN bus with an STU and its sensor devices behind it, and needs to know nothing
else about the simulator.

The channel names the simulated bus. The first adapter opened on a channel
starts a :class:`~icoapi.simulator.server.Simulator` there, later adapters on the
same channel share it (like two programs on one ``can0``), and closing the last
one stops it. So different channels never hear each other: tests isolate their
simulators by giving every test its own channel. The table of channels is
module-level because python-can hands an interface nothing but its arguments
(python-can's own ``virtual`` interface keeps its channels the same way).

The adapter is a CAN controller of its own: it can go **bus-off** (see
:attr:`~icoapi.simulator.faults.Faults.bus_off_after`). Then, as with socketcan,
it receives an error frame with the bus-off flag, every send fails with
``CanOperationError``, nothing is received, and :attr:`SimulatorBus.state` is
``BusState.ERROR``. It restarts by itself after
:attr:`~icoapi.simulator.faults.Faults.bus_off_recovery` seconds (socketcan's
``restart-ms``) with a "restarted" error frame, or when it is closed and opened
again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import can
from can.interfaces.virtual import VirtualBus, channels_lock

from .config import SimulatorConfig
from .server import CAN_ERR_BUSOFF, CAN_ERR_RESTARTED, Simulator, error_frame

log = logging.getLogger(__name__)

INTERFACE = "icosim"
"""The interface name python-can knows the simulator by."""


@dataclass
class _Channel:
    simulator: Simulator
    adapters: list[SimulatorBus] = field(default_factory=list)


_channels: dict[str, _Channel] = {}
_channels_lock = threading.Lock()


def simulator_on(channel: str) -> Simulator:
    """The simulator serving ``channel`` (while an adapter on it is open)."""
    with _channels_lock:
        entry = _channels.get(channel)
    if entry is None:
        raise KeyError(f"No simulator runs on channel {channel!r}")
    return entry.simulator


def adapters_on(channel: str) -> list[SimulatorBus]:
    """The open adapters on ``channel``."""
    with _channels_lock:
        entry = _channels.get(channel)
        return list(entry.adapters) if entry is not None else []


def _bus_off(channel: str, recover_after: float | None) -> None:
    for adapter in adapters_on(channel):
        adapter.enter_bus_off(recover_after)


class SimulatorBus(VirtualBus):
    """A host adapter on the simulated bus ``channel``.

    Args:
        channel: Name of the simulated bus (shared by adapters with the same name).
        config: Devices and timing of the simulator, used by the first adapter
            on the channel; ``None`` takes :meth:`SimulatorConfig.default`.
        **kwargs: Further python-can options (e.g. ``bitrate``, which a
            simulated bus accepts and ignores, like ``virtual``).
    """

    def __init__(
        self,
        channel: str = "icosim",
        config: SimulatorConfig | None = None,
        **kwargs: Any,
    ) -> None:
        name = str(channel)
        kwargs.pop("preserve_timestamps", None)
        kwargs.pop("receive_own_messages", None)
        with _channels_lock:
            entry = _channels.get(name)
            if entry is None:
                simulator = Simulator(config, interface="virtual", channel=f"{INTERFACE}:{name}")
                simulator.bus_off_hook = lambda recover_after: _bus_off(name, recover_after)
                simulator.listening_hook = lambda: any(
                    not adapter.bus_off for adapter in adapters_on(name)
                )
                simulator.start()
                entry = _channels[name] = _Channel(simulator)
            super().__init__(channel=entry.simulator.channel, **kwargs)
            entry.adapters.append(self)
        self.simulated_channel = name
        self.channel_info = f"icoapi simulator, channel {name}"
        self._bus_off_lock = threading.Lock()
        self._bus_off = False
        self._restart: threading.Timer | None = None

    # -- CAN controller state ----------------------------------------------------

    @property
    def state(self) -> can.BusState:
        """``ERROR`` while bus-off, ``ACTIVE`` otherwise."""
        return can.BusState.ERROR if self._bus_off else can.BusState.ACTIVE

    @state.setter
    def state(self, new_state: can.BusState) -> None:
        raise NotImplementedError("The simulated controller's state cannot be set")

    @property
    def bus_off(self) -> bool:
        """The controller is bus-off: it neither sends nor receives."""
        return self._bus_off

    def enter_bus_off(self, recover_after: float | None) -> None:
        """Go bus-off (too many transmit errors); restart by itself after
        ``recover_after`` seconds, or only when reopened if ``None``."""
        with self._bus_off_lock:
            if self._bus_off or not self._open:
                return
            self._bus_off = True
            # A bus-off controller takes part in no traffic: stop listening.
            with channels_lock:
                if self.queue in self.channel:
                    self.channel.remove(self.queue)
            self.queue.put(error_frame(CAN_ERR_BUSOFF))
            if recover_after is not None:
                self._restart = threading.Timer(recover_after, self._recover)
                self._restart.daemon = True
                self._restart.start()
        log.info("Simulated CAN adapter on %s is bus-off", self.simulated_channel)

    def _recover(self) -> None:
        with self._bus_off_lock:
            if not self._bus_off or not self._open:
                return
            self._bus_off = False
            self._restart = None
            self.queue.put(error_frame(CAN_ERR_RESTARTED))
            with channels_lock:
                self.channel.append(self.queue)
        log.info("Simulated CAN adapter on %s restarted after bus-off", self.simulated_channel)

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        if self._bus_off:
            # What socketcan reports for a write to a bus-off controller.
            raise can.CanOperationError("Transmit failed: the CAN controller is bus-off")
        super().send(msg, timeout)

    # -- Life cycle ----------------------------------------------------------------

    def shutdown(self) -> None:
        if not self._open:
            return
        with self._bus_off_lock:
            restart, self._restart = self._restart, None
            if restart is not None:
                restart.cancel()
            if self._bus_off:
                # Not listening: put the queue back so VirtualBus can remove it.
                with channels_lock:
                    self.channel.append(self.queue)
                self._bus_off = False
            super().shutdown()
        last: Simulator | None = None
        with _channels_lock:
            entry = _channels.get(self.simulated_channel)
            if entry is not None and self in entry.adapters:
                entry.adapters.remove(self)
                if not entry.adapters:
                    del _channels[self.simulated_channel]
                    last = entry.simulator
        if last is not None:
            # Outside the lock: its streaming threads ask for the adapters while
            # they end. Open the channel again only after this returns.
            last.stop()
