"""The simulated STU: Bluetooth scan and connection management."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .device import SensorDevice
from .faults import Faults
from .node import NodeBase, ProductInfo, Reply, error_reply, name_part
from .protocol import SELF_ADDRESSING, Block, Bluetooth, System, parse_mac


@dataclass(slots=True)
class _Connection:
    device: SensorDevice
    requested_at: float
    """Monotonic time of the connect request."""
    mac_echoed: bool = False
    """A connect-by-MAC answer carried the MAC already (hardware does it once)."""


class STU(NodeBase):
    """Simulated stationary transceiver unit ("STU 1").

    Bluetooth model: after activation the scan lists devices only once
    ``scan_delay`` seconds have passed.  Device numbers are the order of
    :meth:`available` at the time of the request; a device being connected
    does not advertise.  A connect request succeeds when the number is valid;
    ``is_connected`` turns true ``connect_delay`` seconds later.  Deactivating
    Bluetooth or a reset drops the connection and ends a running stream.

    Attributes:
        devices: All simulated sensor devices (in range or not).
        scan_delay: See :class:`~icoapi.simulator.SimulatorConfig`.
        connect_delay: See :class:`~icoapi.simulator.SimulatorConfig`.
    """

    def __init__(
        self,
        name: str,
        mac: str,
        devices: list[SensorDevice],
        faults: Faults,
        *,
        scan_delay: float,
        connect_delay: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            name,
            parse_mac(mac),
            ProductInfo(
                hardware_version=(1, 1, 0),
                firmware_version=(2, 1, 10),
                release_name="Valerie",
                serial_number="SIM-STU",
                product_name="ICOtronic STU (simulated)",
            ),
        )
        self.devices = devices
        self.faults = faults
        self.scan_delay = scan_delay
        self.connect_delay = connect_delay
        self._clock = clock
        self._lock = threading.Lock()
        self._bluetooth_since: float | None = None
        self._connection: _Connection | None = None

    # -- State -------------------------------------------------------------------

    @property
    def bluetooth_active(self) -> bool:
        """Tell whether Bluetooth is activated."""
        return self._bluetooth_since is not None

    def available(self) -> list[SensorDevice]:
        """Devices the scan currently lists, in device number order."""
        since = self._bluetooth_since
        if since is None or self._clock() < since + self.scan_delay:
            return []
        connection = self._connection
        busy = connection.device if connection is not None else None
        return [
            device
            for device in self.devices
            if device is not busy and not self.faults.is_hidden(device.mac) and device.reachable
        ]

    @property
    def connected_device(self) -> SensorDevice | None:
        """The device the STU is connected to (link established), if any."""
        connection = self._connection
        if connection is None:
            return None
        if self._clock() < connection.requested_at + self.connect_delay:
            return None
        return connection.device

    @property
    def connecting_device(self) -> SensorDevice | None:
        """The device of a connect request in progress or established."""
        connection = self._connection
        return None if connection is None else connection.device

    def drop_connection(self, device: SensorDevice | None = None) -> None:
        """Lose the link (to ``device`` only, when given) and end its stream."""
        with self._lock:
            connection = self._connection
            if connection is None or (device is not None and connection.device is not device):
                return
            self._connection = None
        connection.device.stop_stream()

    def check_link(self) -> None:
        """Drop the connection to a device that went out of range or flat."""
        connection = self._connection
        if connection is not None and not connection.device.reachable:
            self.drop_connection(connection.device)

    def _connect(self, device: SensorDevice) -> None:
        with self._lock:
            self._connection = _Connection(device, self._clock())

    def reset(self) -> None:
        """Power cycle: Bluetooth off, connection and stream gone."""
        self._bluetooth_since = None
        self.drop_connection()

    # -- Requests ----------------------------------------------------------------

    def handle(self, block: int, command: int, data: bytes) -> Reply:
        """Answer one request addressed to "STU 1"."""
        if block == Block.SYSTEM:
            if command == System.BLUETOOTH:
                return self._bluetooth(bytes(data).ljust(8, b"\0"))
            if command == System.RESET:
                self.reset()
                return Reply(b"")
        common = self.handle_common(block, command, data)
        return common if common is not None else error_reply(data)

    def _bluetooth(self, data: bytes) -> Reply:
        subcommand, number = data[0], data[1]
        head = bytes([subcommand, number])
        if subcommand == Bluetooth.ACTIVATE:
            if self._bluetooth_since is None:
                # Repeated activations (the library sends one per scan) must
                # not restart the scan.
                self._bluetooth_since = self._clock()
            return Reply(bytes([subcommand]) + bytes(7))
        if subcommand == Bluetooth.DEACTIVATE:
            self._bluetooth_since = None
            self.drop_connection()
            return Reply(bytes([subcommand]) + bytes(7))
        if subcommand == Bluetooth.DEVICE_COUNT:
            digits = str(len(self.available())).encode("ascii")
            return Reply(head + digits.ljust(6, b"\0"))
        if subcommand == Bluetooth.IS_CONNECTED:
            connected = self.connected_device is not None
            return Reply(bytes([subcommand, 0, int(connected)]) + bytes(5))
        if subcommand == Bluetooth.CONNECT_NUMBER:
            return self._connect_number(number)
        if subcommand == Bluetooth.CONNECT_MAC:
            return self._connect_mac(bytes(data[2:8])[::-1])
        if number == SELF_ADDRESSING:
            return self._self_info(data)
        # Information about scanned device `number`; unknown numbers (e.g.
        # asked before the scan finished) read as zeros.
        devices = self.available()
        device = devices[number] if number < len(devices) else None
        if subcommand in (Bluetooth.GET_NAME_1, Bluetooth.GET_NAME_2):
            name = device.name_bytes if device is not None else bytes(8)
            return Reply(head + name_part(name, subcommand))
        if subcommand == Bluetooth.RSSI:
            rssi = device.read_rssi() if device is not None else 0
            return Reply(head + bytes([rssi & 0xFF]) + bytes(5))
        if subcommand == Bluetooth.MAC:
            mac = device.mac if device is not None else bytes(6)
            return Reply(head + mac[::-1])
        return error_reply(data)

    def _self_info(self, data: bytes) -> Reply:
        subcommand = data[0]
        head = bytes(data[:2])
        named = self.handle_name(data)
        if named is not None:
            return named
        if subcommand == Bluetooth.MAC:
            return Reply(head + self.mac[::-1])
        if subcommand == Bluetooth.RSSI:
            return Reply(head + bytes(6))
        return error_reply(data)

    def _connect_number(self, number: int) -> Reply:
        head = bytes([Bluetooth.CONNECT_NUMBER, number])
        if self._bluetooth_since is None:
            return Reply(head + bytes(6))  # not in search mode
        if self._connection is not None:
            # Already connecting/connected (the library repeats the request
            # every 3 s): keep the current link, report success.
            return Reply(head + b"\x01" + bytes(5))
        devices = self.available()
        if number >= len(devices):
            return Reply(head + bytes(6))
        self._connect(devices[number])
        return Reply(head + b"\x01" + bytes(5))

    def _connect_mac(self, mac: bytes) -> Reply:
        """Connect by MAC address, as strict as hardware: only with Bluetooth
        active and the device found by the scan. The answer carries the MAC
        once, in the first answer after the link is up; zeros otherwise."""
        head = bytes([Bluetooth.CONNECT_MAC, 0])
        zeros = Reply(head + bytes(6))
        if self._bluetooth_since is None:
            return zeros  # not in search mode: nothing happens
        if self._connection is None:
            device = next((d for d in self.available() if d.mac == mac), None)
            if device is None:
                return zeros  # not (yet) found by the scan
            self._connect(device)
        connection = self._connection
        if (
            connection is None
            or connection.device.mac != mac
            or connection.mac_echoed
            or self.connected_device is not connection.device
        ):
            return zeros
        connection.mac_echoed = True
        return Reply(head + mac[::-1])
