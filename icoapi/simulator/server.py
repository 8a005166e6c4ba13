"""The simulator: owns the CAN bus, receives requests and dispatches them."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from uuid import uuid4

import can
import numpy as np

from .config import SimulatorConfig
from .device import SensorDevice
from .faults import Faults
from .node import Reply
from .protocol import SPU1, STH1, STU1, Identifier, acknowledgement_id, parse_mac
from .stu import STU

log = logging.getLogger(__name__)

# Error frame classes (data length 8), as Linux socketcan reports them
# (linux/can/error.h); python-can passes the class bits in the identifier.
CAN_ERR_PROT = 0x008
"""Protocol violation (e.g. a bit or form error)."""
CAN_ERR_BUSOFF = 0x040
"""The controller went bus-off."""
CAN_ERR_BUSERROR = 0x080
"""A bus error (the frame was destroyed and will be repeated)."""
CAN_ERR_RESTARTED = 0x100
"""The controller restarted after bus-off."""


def error_frame(classes: int) -> can.Message:
    """An error frame of the given classes, stamped now."""
    return can.Message(
        timestamp=time.time(),
        arbitration_id=classes,
        is_extended_id=False,
        is_error_frame=True,
        dlc=8,
        data=bytes(8),
    )


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the simulator received (see :attr:`Simulator.requests`)."""

    time: float
    """Monotonic receive time."""
    receiver: int
    block: int
    command: int
    data: bytes
    answered: bool


class Simulator:
    """An emulated STU with sensor devices on a python-can bus.

    The unmodified icotronic library talks to it like to hardware.  Typical
    in-process use (the channel name must be unique per simulator)::

        sim = Simulator(SimulatorConfig.default(), interface="virtual",
                        channel="icosim-1234")
        with sim:
            configure_icotronic("virtual", sim.channel)
            async with Connection() as stu: ...

    Args:
        config: Devices and timing; ``None`` uses :meth:`SimulatorConfig.default`.
        interface: python-can interface of the bus the simulator creates.
        channel: Channel of that bus; a unique ``icosim-…`` name by default.
        bus: An existing bus to use instead (e.g.
            :class:`~icoapi.simulator.socketcand.SocketcandServerBus`); the
            simulator shuts it down on :meth:`stop`.
        **bus_kwargs: Extra arguments for ``can.Bus``.

    Attributes:
        config: The configuration.
        faults: Fault injection, switchable at runtime.
        stu: The simulated STU.
        devices: The simulated sensor devices.
        rate_multiplier: Speed factor applied to streams started from now on.
        requests: The most recent requests received (newest last).
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        interface: str = "virtual",
        channel: str | None = None,
        bus: can.BusABC | None = None,
        **bus_kwargs: Any,
    ) -> None:
        self.config = config if config is not None else SimulatorConfig.default()
        self.interface = interface
        self.channel = channel if channel is not None else f"icosim-{uuid4().hex[:12]}"
        self.faults = Faults()
        self.rate_multiplier = self.config.rate_multiplier
        self.requests: deque[RequestRecord] = deque(maxlen=10_000)
        seeds = np.random.SeedSequence(self.config.seed).spawn(len(self.config.devices))
        self.devices: list[SensorDevice] = [
            SensorDevice(device_config, self, seed)
            for device_config, seed in zip(self.config.devices, seeds, strict=True)
        ]
        self.stu = STU(
            self.config.stu_name,
            self.config.stu_mac,
            self.devices,
            self.faults,
            scan_delay=self.config.scan_delay,
            connect_delay=self.config.connect_delay,
        )
        self._bus = bus
        self._bus_kwargs = bus_kwargs
        self._send_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._timers: set[threading.Timer] = set()
        self._timers_lock = threading.Lock()
        self._started = False
        self._stopped = False
        self.bus_off_hook: Callable[[float | None], None] | None = None
        """Sets the host's CAN adapters bus-off (given their restart delay);
        installed by the ``icosim`` interface, whose adapters have a controller."""
        self.listening_hook: Callable[[], bool] | None = None
        """Whether a host adapter takes frames (installed by ``icosim``)."""

    # -- Life cycle ------------------------------------------------------------------

    @property
    def bus(self) -> can.BusABC:
        """The bus the simulator answers on (available after :meth:`start`)."""
        if self._bus is None:
            raise RuntimeError("Simulator not started")
        return self._bus

    def start(self) -> Self:
        """Open the bus and start answering requests."""
        if self._started:
            raise RuntimeError("A simulator can only be started once")
        self._started = True
        if self._bus is None:
            kwargs = dict(self._bus_kwargs)
            if self.interface == "virtual":
                # Keep the evenly spaced sample timestamps of stream frames.
                kwargs.setdefault("preserve_timestamps", True)
            # ignore_config: global python-can configuration (can.rc,
            # CAN_CONFIG, ~/can.conf) is meant for the client side.
            self._bus = can.Bus(
                interface=self.interface, channel=self.channel, ignore_config=True, **kwargs
            )
        self._thread = threading.Thread(target=self._receive_loop, name="icosim-rx", daemon=True)
        self._thread.start()
        log.info("Simulator answering on %s", self._bus.channel_info)
        return self

    def stop(self) -> None:
        """Stop streams and threads and shut the bus down (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        for device in self.devices:
            device.stop_stream()
        with self._timers_lock:
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
        if self._thread is not None:
            self._thread.join(5)
        if self._bus is not None:
            self._bus.shutdown()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- Convenience -------------------------------------------------------------------

    @property
    def connected_device(self) -> SensorDevice | None:
        """The device the STU is connected to, if any."""
        return self.stu.connected_device

    def device(self, mac_or_name: str) -> SensorDevice:
        """Look a device up by MAC address (any notation) or configured name."""
        for device in self.devices:
            if device.name == mac_or_name:
                return device
        try:
            mac = parse_mac(mac_or_name)
        except ValueError:
            mac = b""
        for device in self.devices:
            if device.mac == mac:
                return device
        raise KeyError(mac_or_name)

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.005
    ) -> bool:
        """Poll ``predicate`` until it holds or ``timeout`` passes (test helper)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return predicate()
            self._stopping.wait(interval)
        return True

    # -- Sending (StreamHost) ------------------------------------------------------------

    def send_batch(self, messages: Sequence[can.Message]) -> None:
        """Send frames in order under the single send lock."""
        if self._stopping.is_set():
            return
        bus = self.bus
        send_many: Callable[[Sequence[can.Message]], None] | None = getattr(bus, "send_many", None)
        with self._send_lock:
            try:
                if send_many is not None:
                    send_many(messages)
                else:
                    for message in messages:
                        bus.send(message)
            except can.CanError as error:
                if not self._stopping.is_set():
                    log.warning("Unable to send: %s", error)

    def send_error_frame(self) -> None:
        """Report a bus error to the host's adapters, as a controller does when a
        frame is destroyed on the bus (the sender repeats it)."""
        self.send_batch((error_frame(CAN_ERR_PROT | CAN_ERR_BUSERROR),))

    def bus_off(self) -> None:
        """The host's CAN adapters go bus-off (``Faults.bus_off_after``)."""
        hook = self.bus_off_hook
        if hook is None:
            log.warning("Bus-off needs the icosim interface; %s has no controller", self.interface)
            return
        hook(self.faults.bus_off_recovery)

    def host_listening(self) -> bool:
        """A host adapter takes frames (not all of them are bus-off)."""
        hook = self.listening_hook
        return True if hook is None else hook()

    def on_link_lost(self, device: SensorDevice) -> None:
        """Drop the Bluetooth link to ``device`` (fault or device reset)."""
        log.info("Bluetooth link to %s lost", device.name)
        self.stu.drop_connection(device)

    # -- Receiving ------------------------------------------------------------------------

    def _receive_loop(self) -> None:
        bus = self.bus
        while not self._stopping.is_set():
            try:
                message = bus.recv(0.1)
            except can.CanError as error:
                if self._stopping.is_set():
                    return
                log.warning("Receive error: %s", error)
                self._stopping.wait(0.1)
                continue
            if message is None or not message.is_extended_id or message.is_error_frame:
                continue
            try:
                self._dispatch(message)
            except Exception:  # one bad request must not end the simulation
                log.exception("Failed to handle %s", message)

    def _dispatch(self, message: can.Message) -> None:
        identifier = Identifier.decode(message.arbitration_id)
        # Only requests from the host; this also skips our own frames on
        # buses that echo them (e.g. udp_multicast).
        if not identifier.request or identifier.sender != SPU1:
            return
        data = bytes(message.data)
        block, command = identifier.block, identifier.command
        subcommand = data[0] if data else None
        node: STU | SensorDevice | None
        self.stu.check_link()
        if self.faults.stu_silent:
            node = None  # the STU hangs: nothing is answered or forwarded
        elif identifier.receiver == STU1:
            node = self.stu
        elif identifier.receiver == STH1:
            node = self.stu.connected_device  # silent when nothing is connected
        else:
            node = None
        answered = node is not None and not self.faults.ignores(block, command, subcommand)
        self.requests.append(
            RequestRecord(time.monotonic(), identifier.receiver, block, command, data, answered)
        )
        if node is None or not answered:
            return
        if self.faults.errors(block, command, subcommand):
            reply = Reply(data, error=True)
        else:
            reply = node.handle(block, command, data)
        response = (
            None
            if reply.data is None
            else can.Message(
                timestamp=time.time(),
                arbitration_id=acknowledgement_id(message.arbitration_id, error=reply.error),
                is_extended_id=True,
                data=reply.data,
            )
        )
        delay = self.faults.response_delay
        if delay > 0:
            self._deliver_later(delay, response, reply.after)
        else:
            self._deliver(response, reply.after)

    def _deliver(self, response: can.Message | None, after: Callable[[], None] | None) -> None:
        if response is not None:
            response.timestamp = time.time()
            self.send_batch((response,))
        if after is not None and not self._stopping.is_set():
            after()

    def _deliver_later(
        self, delay: float, response: can.Message | None, after: Callable[[], None] | None
    ) -> None:
        def fire() -> None:
            with self._timers_lock:
                self._timers.discard(timer)
            self._deliver(response, after)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._timers_lock:
            if self._stopping.is_set():
                return
            self._timers.add(timer)
        timer.start()
