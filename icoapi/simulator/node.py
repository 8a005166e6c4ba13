"""Behaviour shared by the simulated STU and sensor devices.

Both kinds of node answer System/Get State, the Product Data block and the
EEPROM block.  Product data is served from the EEPROM image (page 4), so
writes through ``node.eeprom.write_*`` show up in ``get_serial_number()`` &c.
exactly like on hardware.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .protocol import (
    EEPROM_STATUS_INITIALIZED,
    STATE_OPERATING,
    Block,
    Bluetooth,
    Eeprom,
    ProductData,
    System,
)

PAGE_SIZE = 256
"""Bytes per EEPROM page (the library's largest field ends at offset 256)."""


def name_part(name: bytes, subcommand: int) -> bytes:
    """The six data bytes that answer GET_NAME_1 (name bytes 0–5) or GET_NAME_2
    (bytes 6–7, then zeros) for an 8-byte, NUL-padded name."""
    if subcommand == Bluetooth.GET_NAME_1:
        return name[:6]
    return name[6:8] + bytes(4)


@dataclass(slots=True)
class Reply:
    """The answer a node gives to one request.

    Attributes:
        data: Payload of the acknowledgement (or error) frame; ``None`` sends
            no frame: ``after`` produces the answer (the first stream frame
            answers a stream start, as on hardware).
        error: Send an error frame instead of an acknowledgement.
        after: Called right after the answer went out (e.g. start streaming),
            so frames never overtake their acknowledgement.
    """

    data: bytes | None
    error: bool = False
    after: Callable[[], None] | None = None


def error_reply(request: bytes) -> Reply:
    """An error frame echoing the request payload (the library ignores it)."""
    return Reply(bytes(request), error=True)


class EEPROMImage:
    """Byte image of a node's EEPROM, organised in 256-byte pages."""

    def __init__(self) -> None:
        self._pages: dict[int, bytearray] = {}
        self._lock = threading.Lock()

    def _page(self, page: int) -> bytearray:
        if not 0 <= page <= 0xFF:
            raise ValueError(f"EEPROM page {page} out of range")
        return self._pages.setdefault(page, bytearray(PAGE_SIZE))

    def read(self, page: int, offset: int, length: int) -> bytes:
        """Read ``length`` bytes; bytes beyond the page end read as zero."""
        with self._lock:
            data = bytes(self._page(page)[offset : offset + length])
        return data + bytes(max(0, length - len(data)))

    def write(self, page: int, offset: int, data: bytes) -> None:
        """Write ``data``; bytes beyond the page end are discarded."""
        with self._lock:
            target = self._page(page)
            end = min(PAGE_SIZE, offset + len(data))
            if offset < end:
                target[offset:end] = data[: end - offset]

    def write_int(self, page: int, offset: int, length: int, value: int) -> None:
        """Write a little-endian unsigned integer."""
        self.write(page, offset, value.to_bytes(length, "little"))

    def write_text(self, page: int, offset: int, length: int, text: str) -> None:
        """Write text, NUL padded (and truncated) to ``length`` bytes."""
        data = text.encode("utf-8")[:length]
        self.write(page, offset, data + bytes(length - len(data)))


@dataclass(slots=True)
class ProductInfo:
    """Product data a node is manufactured with (stored on EEPROM page 4)."""

    gtin: int = 0
    hardware_version: tuple[int, int, int] = (1, 0, 0)
    firmware_version: tuple[int, int, int] = (2, 1, 10)
    release_name: str = "Valerie"
    serial_number: str = ""
    product_name: str = ""
    oem_data: bytes = b""


class NodeBase:
    """State and request handling common to STU and sensor devices."""

    NAME_PAGE = 0
    NAME_OFFSET = 1
    PRODUCT_PAGE = 4

    def __init__(self, name: str, mac: bytes, product: ProductInfo) -> None:
        self.mac = mac
        self.eeprom = EEPROMImage()
        self.eeprom.write(0, 0, bytes([EEPROM_STATUS_INITIALIZED]))
        self.name_bytes = name.encode("utf-8")
        page = self.PRODUCT_PAGE
        self.eeprom.write_int(page, 0, 8, product.gtin)
        self.eeprom.write(page, 13, bytes(product.hardware_version))
        self.eeprom.write(page, 21, bytes(product.firmware_version))
        self.eeprom.write_text(page, 24, 8, product.release_name)
        self.eeprom.write_text(page, 32, 32, product.serial_number)
        self.eeprom.write_text(page, 64, 128, product.product_name)
        self.eeprom.write(page, 192, product.oem_data[:64].ljust(64, b"\0"))
        # Statistics (page 5): plausible values so `icon` and the EEPROM
        # doctests have something to show.
        self.eeprom.write_int(5, 0, 4, 42)  # power on cycles
        self.eeprom.write_int(5, 4, 4, 41)  # power off cycles
        self.eeprom.write_int(5, 8, 4, 3600)  # operating time (s)
        self.eeprom.write_text(5, 20, 8, "20250101")  # production date
        self.eeprom.write_int(5, 28, 4, 1)  # batch number

    # -- Name ------------------------------------------------------------------

    @property
    def name_bytes(self) -> bytes:
        """The 8 name bytes, NUL padded, as stored in EEPROM (page 0, offset 1)."""
        return self.eeprom.read(self.NAME_PAGE, self.NAME_OFFSET, 8)

    @name_bytes.setter
    def name_bytes(self, value: bytes) -> None:
        if len(value) > 8:
            raise ValueError("A name has at most 8 bytes")
        self.eeprom.write(self.NAME_PAGE, self.NAME_OFFSET, value.ljust(8, b"\0"))

    @property
    def name(self) -> str:
        """The name as configured (bytes up to the first NUL)."""
        return self.name_bytes.split(b"\0", 1)[0].decode("utf-8", errors="replace")

    @name.setter
    def name(self, value: str) -> None:
        self.name_bytes = value.encode("utf-8")

    def handle_name(self, data: bytes) -> Reply | None:
        """The Bluetooth name subcommands addressed to this node itself: the name
        travels in two parts (bytes 0–5 and 6–7). ``None`` for other subcommands."""
        data = bytes(data).ljust(8, b"\0")
        subcommand, head, name = data[0], data[:2], self.name_bytes
        if subcommand in (Bluetooth.GET_NAME_1, Bluetooth.GET_NAME_2):
            return Reply(head + name_part(name, subcommand))
        if subcommand == Bluetooth.SET_NAME_1:
            self.name_bytes = (data[2:8] + name[6:8]).rstrip(b"\0")
            return Reply(data)
        if subcommand == Bluetooth.SET_NAME_2:
            self.name_bytes = (name[:6] + data[2:4]).rstrip(b"\0")
            return Reply(data)
        return None

    # -- Requests --------------------------------------------------------------

    def handle_common(self, block: int, command: int, data: bytes) -> Reply | None:
        """Answer requests every node understands; ``None`` if not one of them."""
        if block == Block.SYSTEM and command == System.STATE:
            # Get and Set both answer with the (unchanged) current state: the
            # simulated nodes are always in Application/Operating.
            return Reply(bytes([STATE_OPERATING]))
        if block == Block.PRODUCT_DATA:
            return self._product_data(command, data)
        if block == Block.EEPROM:
            return self._eeprom_request(command, data)
        return None

    def _product_data(self, command: int, data: bytes) -> Reply:
        page = self.PRODUCT_PAGE
        read = self.eeprom.read
        if command == ProductData.GTIN:
            return Reply(read(page, 0, 8))
        if command == ProductData.HARDWARE_VERSION:
            return Reply(bytes(5) + read(page, 13, 3))
        if command == ProductData.FIRMWARE_VERSION:
            return Reply(bytes(5) + read(page, 21, 3))
        if command == ProductData.RELEASE_NAME:
            return Reply(read(page, 24, 8))
        if ProductData.SERIAL_NUMBER_1 <= command < ProductData.PRODUCT_NAME_1:
            return Reply(read(page, 32 + 8 * (command - ProductData.SERIAL_NUMBER_1), 8))
        if ProductData.PRODUCT_NAME_1 <= command < ProductData.OEM_1:
            return Reply(read(page, 64 + 8 * (command - ProductData.PRODUCT_NAME_1), 8))
        if ProductData.OEM_1 <= command <= ProductData.OEM_1 + 7:
            return Reply(read(page, 192 + 8 * (command - ProductData.OEM_1), 8))
        return error_reply(data)

    def _eeprom_request(self, command: int, data: bytes) -> Reply:
        if len(data) < 3:
            return error_reply(data)
        page, offset, length = data[0], data[1], data[2]
        if length > 4:
            return error_reply(data)
        if command == Eeprom.READ:
            content = self.eeprom.read(page, offset, length)
            return Reply(bytes([page, offset, length, 0]) + content.ljust(4, b"\0"))
        if command == Eeprom.WRITE:
            self.eeprom.write(page, offset, bytes(data[4 : 4 + length]))
            return Reply(bytes(data))
        return error_reply(data)
