"""Byte-level facts of the ICOtronic (MyTooliT) CAN protocol used by the simulator.

The values here mirror what icotronic 8 sends and checks; see
``docs/simulator.md`` and the module docstrings of the handlers for details.
Everything is plain integers so the hot paths stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

# -- Node numbers -------------------------------------------------------------

STH1: Final = 1
"""The sensor device connected through the STU ("STH 1")."""
SPU1: Final = 15
"""The host (the icotronic library always talks as "SPU 1")."""
STU1: Final = 17
"""The stationary transceiver unit ("STU 1")."""

SELF_ADDRESSING: Final = 0xFF
"""Bluetooth device number meaning "the addressed node itself"."""

ADC_MAX: Final = 65535
"""Full scale of the 16-bit ADC."""

SUPPLY_DIVIDER: Final = 5.7
"""Voltage divider of the supply voltage input (library: raw*5.7*Vref/65535)."""

CLOCK_HZ: Final = 38_400_000
"""ADC clock used by the library's sample rate formula."""


class Block(IntEnum):
    """Command blocks (6 bit) of the identifier."""

    SYSTEM = 0x00
    STREAMING = 0x04
    STATISTICAL_DATA = 0x08
    CONFIGURATION = 0x28
    EEPROM = 0x3D
    PRODUCT_DATA = 0x3E


class System(IntEnum):
    """Block commands of the System block."""

    RESET = 0x01
    STATE = 0x02
    BLUETOOTH = 0x0B


class Streaming(IntEnum):
    """Block commands of the Streaming block."""

    DATA = 0x00
    TEMPERATURE = 0x01
    VOLTAGE = 0x20


class Configuration(IntEnum):
    """Block commands of the Configuration block."""

    ADC = 0x00
    SENSOR = 0x01
    CALIBRATION = 0x62


class Eeprom(IntEnum):
    """Block commands of the EEPROM block."""

    READ = 0x00
    WRITE = 0x01


class ProductData(IntEnum):
    """Block commands of the Product Data block (ranges for multi part fields)."""

    GTIN = 0x00
    HARDWARE_VERSION = 0x01
    FIRMWARE_VERSION = 0x02
    RELEASE_NAME = 0x03
    SERIAL_NUMBER_1 = 0x04  # .. 0x07
    PRODUCT_NAME_1 = 0x08  # .. 0x17
    OEM_1 = 0x18  # .. 0x1F


class Bluetooth(IntEnum):
    """Subcommands (data byte 0) of System/Bluetooth."""

    ACTIVATE = 1
    DEVICE_COUNT = 2
    SET_NAME_1 = 3
    SET_NAME_2 = 4
    GET_NAME_1 = 5
    GET_NAME_2 = 6
    CONNECT_NUMBER = 7
    IS_CONNECTED = 8
    DEACTIVATE = 9
    RSSI = 12
    GET_ENERGY_REDUCED = 13
    SET_ENERGY_REDUCED = 14
    GET_ENERGY_LOWEST = 15
    SET_ENERGY_LOWEST = 16
    MAC = 17
    CONNECT_MAC = 18


STATE_OPERATING: Final = 0x25
"""Get state answer: Application location, Operating state (icostate compares it)."""

EEPROM_STATUS_INITIALIZED: Final = 0xAC

# -- Identifier -----------------------------------------------------------------

_REQUEST_BIT: Final = 1 << 13
_ERROR_BIT: Final = 1 << 12


@dataclass(frozen=True, slots=True)
class Identifier:
    """A decoded 29-bit identifier of the MyTooliT protocol.

    Bit layout (LSB first): receiver 0-4, sender 6-10, error 12, request 13,
    block command 14-21, block 22-27; bits 5, 11 and 28 are zero.
    """

    block: int
    command: int
    sender: int
    receiver: int
    request: bool = False
    error: bool = False

    def encode(self) -> int:
        """Return the numeric (extended) CAN identifier."""
        return encode_identifier(
            self.block,
            self.command,
            sender=self.sender,
            receiver=self.receiver,
            request=self.request,
            error=self.error,
        )

    @classmethod
    def decode(cls, value: int) -> Identifier:
        """Split a numeric identifier into its fields."""
        return cls(
            block=(value >> 22) & 0x3F,
            command=(value >> 14) & 0xFF,
            sender=(value >> 6) & 0x1F,
            receiver=value & 0x1F,
            request=bool(value & _REQUEST_BIT),
            error=bool(value & _ERROR_BIT),
        )


def encode_identifier(
    block: int,
    command: int,
    *,
    sender: int,
    receiver: int,
    request: bool = False,
    error: bool = False,
) -> int:
    """Build a numeric identifier from its fields."""
    return (
        (block & 0x3F) << 22
        | (command & 0xFF) << 14
        | (_REQUEST_BIT if request else 0)
        | (_ERROR_BIT if error else 0)
        | (sender & 0x1F) << 6
        | (receiver & 0x1F)
    )


def acknowledgement_id(request_id: int, *, error: bool = False) -> int:
    """Return the identifier that answers ``request_id``.

    Same rule as the library's matcher: swap sender and receiver, clear the
    request bit and set the error bit for error answers.
    """
    sender = (request_id >> 6) & 0x1F
    receiver = request_id & 0x1F
    value = request_id & ~(_REQUEST_BIT | _ERROR_BIT | 0x1F | (0x1F << 6))
    value |= receiver << 6 | sender
    if error:
        value |= _ERROR_BIT
    return value


STREAM_DATA_ID: Final = encode_identifier(
    Block.STREAMING, Streaming.DATA, sender=STH1, receiver=SPU1
)
"""Identifier of streamed data frames (STH 1 → SPU 1, Streaming/Data ack)."""

# -- Streaming format byte ------------------------------------------------------

DATA_SETS: Final = (0, 1, 3, 6, 10, 15, 20, 30)
"""Number of data sets selected by bits 0-2 of the streaming format byte."""


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """Decoded streaming format byte (Streaming/Data and Streaming/Voltage).

    Bit 7 streaming (vs. single request), bit 6 3-byte values, bits 5/4/3
    measurement channel 1/2/3, bits 0-2 index into :data:`DATA_SETS`.
    """

    streaming: bool
    wide: bool
    channels: tuple[bool, bool, bool]
    sets: int

    @classmethod
    def decode(cls, value: int) -> StreamFormat:
        """Decode a format byte."""
        return cls(
            streaming=bool(value & 0x80),
            wide=bool(value & 0x40),
            channels=(bool(value & 0x20), bool(value & 0x10), bool(value & 0x08)),
            sets=DATA_SETS[value & 0x07],
        )

    @property
    def enabled(self) -> list[int]:
        """Enabled measurement channels as 1-based numbers, in frame order."""
        return [number for number, on in enumerate(self.channels, start=1) if on]


def sample_rate(prescaler: int, acquisition_time: int, oversampling_rate: int) -> float:
    """ADC sample rate in Hz, the library's formula (values across all channels)."""
    return CLOCK_HZ / ((prescaler + 1) * (acquisition_time + 13) * oversampling_rate)


# -- Text -----------------------------------------------------------------------


def visible_text(text: str | bytes) -> str:
    """Return ``text`` as the library will read it back.

    icotronic's text conversion keeps only printable ASCII above the space,
    so a device named "Tool 1" is reported as "Tool1" (as with hardware).
    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    return bytes(byte for byte in data if 0x20 < byte < 0x80).decode("ascii")


def parse_mac(mac: str) -> bytes:
    """Parse a MAC address like ``08-6B-D7-01-DE-81`` or ``08:6b:d7:01:de:81``."""
    digits = mac.replace("-", "").replace(":", "").replace(".", "")
    if len(digits) != 12:
        raise ValueError(f"Invalid MAC address “{mac}”")
    try:
        return bytes.fromhex(digits)
    except ValueError as error:
        raise ValueError(f"Invalid MAC address “{mac}”") from error
