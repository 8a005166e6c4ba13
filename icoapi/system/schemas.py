"""Request and response bodies of the hardware endpoints."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

# The values the ADC of an ICOtronic sensor device accepts (icotronic.can.adc).
REFERENCE_VOLTAGES = (1.25, 1.65, 1.8, 2.1, 2.2, 2.5, 2.7, 3.3, 5.0, 6.6)
# Acquisition time 1 and oversampling rate 1 exist in the library's tables, but
# the device encodes them as byte 0, which it reads as "unset": it would run
# with 8 and 64 (and report those) instead. So they are refused everywhere.
ACQUISITION_TIMES = (2, 3, 4, 8, 16, 32, 64, 128, 256)
OVERSAMPLING_RATES = tuple(2**exponent for exponent in range(1, 13))
_UNSET_ON_THE_DEVICE = "the device takes 1 as 'unset' and would run at another rate"
DEFAULT_ADC = {
    "prescaler": 2,
    "acquisition_time": 8,
    "oversampling_rate": 64,
    "reference_voltage": 3.3,
}

_MAC = re.compile(r"^[0-9A-Fa-f]{2}([-:]?)(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$")


def normalize_mac(value: str) -> str:
    """Canonical MAC form: upper case, dash separated (``08-6B-D7-01-DE-81``)."""
    value = value.strip()
    if not _MAC.match(value):
        raise ValueError(
            f"'{value}' is not a MAC address; expected six hex bytes like 08-6B-D7-01-DE-81"
        )
    digits = re.sub(r"[-:]", "", value).upper()
    return "-".join(digits[index : index + 2] for index in range(0, 12, 2))


def check_device_name(value: str) -> str:
    encoded = value.encode("utf-8")
    if not 1 <= len(encoded) <= 8:
        raise ValueError(f"the name must be 1 to 8 bytes long, got {len(encoded)} bytes")
    if not all(0x21 <= byte <= 0x7E for byte in encoded):
        # The library drops spaces and non-ASCII characters when it reads a name,
        # so such a name would not read back as written.
        raise ValueError("the name may only contain printable ASCII characters without spaces")
    return value


# The same forms normalize_mac accepts (the JSON Schema regex has no back-references).
MAC_PATTERN = (
    r"^\s*(?:[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}"
    r"|[0-9A-Fa-f]{12})\s*$"
)
MacAddress = Annotated[
    str,
    Field(pattern=MAC_PATTERN, examples=["08-6B-D7-01-DE-81"]),
    AfterValidator(normalize_mac),
]
DeviceName = Annotated[str, AfterValidator(check_device_name)]


class STUInfo(BaseModel):
    name: str = Field(examples=["STU 1"])
    device_number: int = Field(examples=[1])
    mac_address: str = Field(examples=["08-6B-D7-01-DE-10"])


class SensorDeviceInfo(BaseModel):
    name: str = Field(examples=["Tool 1"])
    device_number: int = Field(description="Number of the device in the STU's scan list.")
    mac_address: str = Field(examples=["08-6B-D7-01-DE-81"])
    rssi: int = Field(description="Received signal strength in dBm.", examples=[-45])


class ConnectRequest(BaseModel):
    mac_address: MacAddress


class RenameRequest(BaseModel):
    mac_address: MacAddress
    new_name: DeviceName


class RenameResponse(BaseModel):
    name: str
    old_name: str
    mac_address: str


class ADCValues(BaseModel):
    """ADC settings of a sensor device. ``null`` means the library default
    (prescaler 2, acquisition time 8, oversampling 64, reference 3.3 V)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prescaler": 2,
                    "acquisition_time": 8,
                    "oversampling_rate": 64,
                    "reference_voltage": 3.3,
                }
            ]
        }
    )

    prescaler: int | None = Field(None, ge=1, le=127)
    acquisition_time: int | None = None
    oversampling_rate: int | None = None
    reference_voltage: float | None = None

    @field_validator("acquisition_time")
    @classmethod
    def _acquisition_time(cls, value: int | None) -> int | None:
        if value is not None and value not in ACQUISITION_TIMES:
            why = f" ({_UNSET_ON_THE_DEVICE})" if value == 1 else ""
            raise ValueError(f"must be one of {', '.join(map(str, ACQUISITION_TIMES))}{why}")
        return value

    @field_validator("oversampling_rate")
    @classmethod
    def _oversampling_rate(cls, value: int | None) -> int | None:
        if value is not None and value not in OVERSAMPLING_RATES:
            why = f" ({_UNSET_ON_THE_DEVICE})" if value == 1 else ""
            raise ValueError(f"must be one of {', '.join(map(str, OVERSAMPLING_RATES))}{why}")
        return value

    @field_validator("reference_voltage")
    @classmethod
    def _reference_voltage(cls, value: float | None) -> float | None:
        if value is None:
            return None
        for allowed in REFERENCE_VOLTAGES:
            if abs(value - allowed) < 1e-6:
                return allowed
        raise ValueError(f"must be one of {', '.join(map(str, REFERENCE_VOLTAGES))} V")

    def with_defaults(self) -> ADCSettings:
        values = {key: value for key, value in self.model_dump().items() if value is not None}
        return ADCSettings(**{**DEFAULT_ADC, **values})


class ADCSettings(BaseModel):
    """A complete ADC configuration, as the device uses it."""

    prescaler: int
    acquisition_time: int
    oversampling_rate: int
    reference_voltage: float

    @property
    def sample_rate(self) -> float:
        """Samples per second across all enabled channels."""
        return 38_400_000 / (
            (self.prescaler + 1) * (self.acquisition_time + 13) * self.oversampling_rate
        )


class SupplyVoltage(BaseModel):
    supply_voltage: float = Field(description="Supply (battery) voltage in volt.")
    unit: Literal["V"] = "V"
    indication: str | None = None
    timestamp_utc_iso: str


class ConnectedDevice(BaseModel):
    """The sensor device the STU is connected to."""

    name: str
    mac_address: str


class LinkState(StrEnum):
    """Where the CAN link stands: what is connected. Whether a measurement holds
    the connected device is separate (``ICOSystem.measuring``)."""

    DISCONNECTED = "disconnected"
    STU_CONNECTED = "stu_connected"
    SENSOR_CONNECTED = "sensor_connected"


class SystemSnapshot(BaseModel):
    """The state of the ICOtronic system at one moment, for ``GET /state``."""

    link_state: LinkState
    measuring: bool = Field(description="A measurement holds the connected sensor device.")
    link_error: str | None = Field(description="Why the CAN link is not available.")
    can_interface: str = Field(description="The CAN link, e.g. 'socketcan channel can0'.")
    device: ConnectedDevice | None = Field(description="The connected sensor device.")
