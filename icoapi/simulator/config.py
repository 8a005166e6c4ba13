"""Configuration of the simulated system (STU plus sensor devices)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .protocol import parse_mac
from .signals import Signal, default_signals


@dataclass
class DeviceConfig:
    """Configuration of one simulated sensor device (STH).

    Attributes:
        name: Bluetooth name, at most 8 bytes (UTF-8).  Like with hardware the
            library drops spaces and non-ASCII characters when it reads names,
            so prefer names without them.
        mac: Bluetooth MAC address, e.g. ``"08-6B-D7-01-DE-81"``.
        rssi: Signal strength in dBm reported by the scan and the device.
        supply_voltage: Battery voltage in V.
        supports_channel_mapping: ``False`` answers sensor configuration
            requests with an error frame (older firmware).
        sensor_configuration: Hardware sensor numbers of measurement channels
            1-3 after power on.
        signals: Signals per hardware sensor number; ``None`` uses
            :func:`~icoapi.simulator.signals.default_signals`.  The number of
            available sensors is the highest key.
    """

    name: str
    mac: str
    rssi: int = -50
    supply_voltage: float = 3.9
    supports_channel_mapping: bool = True
    sensor_configuration: tuple[int, int, int] = (1, 2, 3)
    signals: dict[int, Signal] | None = None
    hardware_version: tuple[int, int, int] = (1, 4, 0)
    firmware_version: tuple[int, int, int] = (3, 0, 0)
    release_name: str = "Valerie"
    serial_number: str = ""
    product_name: str = "ICOtronic STH (simulated)"
    gtin: int = 0

    def __post_init__(self) -> None:
        if len(self.name.encode("utf-8")) > 8:
            raise ValueError(f"Name “{self.name}” is longer than 8 bytes")
        parse_mac(self.mac)
        if not -128 <= self.rssi <= 127:
            raise ValueError(f"RSSI {self.rssi} does not fit into a signed byte")


@dataclass
class SimulatorConfig:
    """Configuration of the whole simulated system.

    Attributes:
        devices: The sensor devices the STU can find.
        scan_delay: Seconds after Bluetooth activation until devices show up
            in the STU's scan.
        connect_delay: Seconds after a connect request until the STU reports
            the device as connected.
        rate_multiplier: Speeds every stream up by this factor (benchmarks);
            timestamps follow the real sending rate.
        seed: Seed of all random numbers (noise, random drops); ``None`` picks
            a fresh one.
        stu_name: Bluetooth name of the STU.
        stu_mac: MAC address of the STU.
    """

    devices: list[DeviceConfig] = field(default_factory=list)
    scan_delay: float = 0.1
    connect_delay: float = 0.3
    rate_multiplier: float = 1.0
    seed: int | None = None
    stu_name: str = "STU-Sim"
    stu_mac: str = "08-6B-D7-01-DE-00"

    def __post_init__(self) -> None:
        if self.rate_multiplier <= 0:
            raise ValueError("rate_multiplier must be positive")
        if self.scan_delay < 0 or self.connect_delay < 0:
            raise ValueError("Delays must not be negative")
        macs = [parse_mac(device.mac) for device in self.devices]
        if len(set(macs)) != len(macs):
            raise ValueError("Device MAC addresses must be unique")

    @classmethod
    def default(cls, devices: int = 3, **overrides: object) -> SimulatorConfig:
        """Three (or ``devices``) sensor devices with distinct names, MACs and RSSI.

        Used by ``make demo`` and ``python -m icoapi.simulator``.
        """
        if not 0 <= devices <= 99:
            raise ValueError("Number of devices must be between 0 and 99")
        configs = [
            DeviceConfig(
                name=f"Tool-{number}",
                mac=f"08-6B-D7-01-DE-{0x80 + number:02X}",
                rssi=-45 - 13 * ((number - 1) % 4),
                serial_number=f"SIM-{number:04d}",
                signals=default_signals(),
            )
            for number in range(1, devices + 1)
        ]
        config = cls(devices=configs)
        for key, value in overrides.items():
            if not hasattr(config, key):
                raise TypeError(f"Unknown SimulatorConfig field “{key}”")
            setattr(config, key, value)
        config.__post_init__()
        return config
