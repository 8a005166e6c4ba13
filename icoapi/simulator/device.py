"""A simulated sensor device (STH), as reached through the STU as "STH 1"."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from can import Message

from .config import DeviceConfig
from .faults import Faults
from .node import NodeBase, ProductInfo, Reply, error_reply
from .protocol import (
    ADC_MAX,
    SUPPLY_DIVIDER,
    Block,
    Bluetooth,
    Configuration,
    StreamFormat,
    Streaming,
    System,
    parse_mac,
    sample_rate,
)
from .signals import Signal, default_signals, volts_to_raw
from .streamer import Streamer

REFERENCE_VOLTAGES = (1.25, 1.65, 1.8, 2.1, 2.2, 2.5, 2.7, 3.3, 5.0, 6.6)
# The library encodes Vref as int(V * 20); accept exactly the bytes it sends.
_VREF_BYTES = frozenset(int(voltage * 20) for voltage in REFERENCE_VOLTAGES)

DEFAULT_ADC = bytes([0x00, 2, 4, 6, 66])
"""Power-on ADC bytes: prescaler 2, acquisition time 8, oversampling 64, 3.3 V."""

# Energy mode times on EEPROM page 0 (sleep ms u32, advertisement u16 in 0.625 ms)
_REDUCED_OFFSET = 9
_LOWEST_OFFSET = 15


PATH_LOSS_EXPONENT = 2.5
"""How fast the signal fades with distance: RSSI falls by 10·n·log10(d) dB
(n = 2 in free space, more indoors)."""
RSSI_SENSITIVITY = -95
"""Weakest mean RSSI in dBm at which the STU still hears a device."""
BATTERY_CUTOFF = 3.0
"""Supply voltage in V below which a device switches itself off."""


class DeviceHost(Protocol):
    """What a device needs from the simulator that owns the bus."""

    faults: Faults
    rate_multiplier: float

    def send_batch(self, messages: Sequence[Message]) -> None:
        """Send frames in order."""

    def send_error_frame(self) -> None:
        """Report a CAN bus error to the host."""

    def bus_off(self) -> None:
        """The host's CAN adapter goes bus-off."""

    def host_listening(self) -> bool:
        """A host adapter takes frames."""

    def on_link_lost(self, device: SensorDevice) -> None:
        """The Bluetooth link to ``device`` dropped."""


def _acquisition_time(byte: int) -> int:
    return byte + 1 if byte <= 3 else 2 ** (byte - 1)


class SensorDevice(NodeBase):
    """One simulated sensor device.

    The state is what firmware keeps: the name lives in the EEPROM image (so a
    rename survives reconnects), the ADC configuration and the sensor
    (channel) configuration in RAM.  Tests may change everything at runtime,
    e.g. ``device.signals[1].amplitude = 5`` or ``device.supply_voltage = 3.3``.

    Attributes:
        config: The configuration the device was built from.
        rssi: Mean signal strength in dBm at 1 m (or wherever the device is
            while ``distance`` is ``None``); readings add ``Faults.rssi_noise``.
        distance: Metres from the STU; ``None`` keeps ``rssi``. Farther away
            the RSSI drops (:data:`PATH_LOSS_EXPONENT`); below
            :data:`RSSI_SENSITIVITY` the device is out of range: the scan does
            not list it and a connection to it drops.
        battery_drain: Volts the battery loses per second (hardware: a few
            tenths of a volt over a day of streaming). Below
            :data:`BATTERY_CUTOFF` the device switches off, like out of range.
        supply_voltage: Battery voltage in V now (see also ``Faults.low_battery``).
        supports_channel_mapping: ``False`` answers sensor configuration
            requests with an error frame.
        sensor_configuration: Hardware sensor numbers of channels 1-3.
        signals: Signal per hardware sensor number.
        self_test: Dimensions (1-3) with an active accelerometer self test.
    """

    SELF_TEST_VOLTS = 0.25
    """Voltage shift of an accelerometer while its self test is active."""

    def __init__(
        self, config: DeviceConfig, host: DeviceHost, seed: np.random.SeedSequence
    ) -> None:
        super().__init__(
            config.name,
            parse_mac(config.mac),
            ProductInfo(
                gtin=config.gtin,
                hardware_version=config.hardware_version,
                firmware_version=config.firmware_version,
                release_name=config.release_name,
                serial_number=config.serial_number,
                product_name=config.product_name,
            ),
        )
        self.config = config
        self.host = host
        self.rssi = config.rssi
        self.distance: float | None = None
        self._battery_drain = 0.0
        self._battery_lock = threading.Lock()
        self._supply_voltage = config.supply_voltage
        self._voltage_read_at = time.monotonic()
        self.supports_channel_mapping = config.supports_channel_mapping
        self.sensor_configuration = list(config.sensor_configuration)
        source = config.signals if config.signals is not None else default_signals()
        self.signals: dict[int, Signal] = {number: s.copy() for number, s in source.items()}
        self.self_test: set[int] = set()
        self._adc = bytearray(DEFAULT_ADC)
        self._seed = seed
        self._rng = np.random.default_rng(seed.spawn(1)[0])
        self._born = time.monotonic()
        self._single_counter = 0
        self._streamer: Streamer | None = None
        self.last_stream: Streamer | None = None
        """The most recent stream (kept after it ended, for its statistics)."""
        self._stream_lock = threading.Lock()
        self.eeprom.write_int(0, _REDUCED_OFFSET, 4, 5 * 60 * 1000)
        self.eeprom.write_int(0, _REDUCED_OFFSET + 4, 2, 2000)  # 1.25 s
        self.eeprom.write_int(0, _LOWEST_OFFSET, 4, 3 * 24 * 3600 * 1000)
        self.eeprom.write_int(0, _LOWEST_OFFSET + 4, 2, 4000)  # 2.5 s

    def __repr__(self) -> str:
        return f"SensorDevice(name={self.name!r}, mac={self.config.mac!r})"

    # -- ADC -------------------------------------------------------------------------

    @property
    def adc_bytes(self) -> bytes:
        """The five ADC configuration bytes in the library's encoding."""
        return bytes(self._adc)

    @property
    def prescaler(self) -> int:
        """ADC prescaler."""
        return self._adc[1]

    @property
    def acquisition_time(self) -> int:
        """ADC acquisition time in cycles."""
        return _acquisition_time(self._adc[2])

    @property
    def oversampling_rate(self) -> int:
        """ADC oversampling rate."""
        return int(2 ** self._adc[3])

    @property
    def reference_voltage(self) -> float:
        """ADC reference voltage in V."""
        return self._adc[4] / 20

    def sample_rate(self) -> float:
        """ADC sample rate in Hz (values per second across all channels)."""
        return sample_rate(self.prescaler, self.acquisition_time, self.oversampling_rate)

    def _apply_adc(self, data: bytes) -> bool:
        prescaler, acquisition, oversampling, vref = data[1], data[2], data[3], data[4]
        if not 1 <= prescaler <= 127 or acquisition > 9 or oversampling > 12:
            return False
        if vref not in _VREF_BYTES:
            return False
        self._adc[1:5] = bytes([prescaler, acquisition, oversampling, vref])
        return True

    # -- Radio and battery -------------------------------------------------------------

    def _settle_battery(self) -> float:
        """The voltage now, after draining since the last look (lock held)."""
        now = time.monotonic()
        elapsed, self._voltage_read_at = now - self._voltage_read_at, now
        self._supply_voltage = max(0.0, self._supply_voltage - self._battery_drain * elapsed)
        return self._supply_voltage

    @property
    def supply_voltage(self) -> float:
        """Battery voltage in V now (lower by ``battery_drain`` every second)."""
        with self._battery_lock:
            return self._settle_battery()

    @supply_voltage.setter
    def supply_voltage(self, value: float) -> None:
        with self._battery_lock:
            self._supply_voltage = value
            self._voltage_read_at = time.monotonic()

    @property
    def battery_drain(self) -> float:
        """Volts the battery loses per second."""
        return self._battery_drain

    @battery_drain.setter
    def battery_drain(self, value: float) -> None:
        with self._battery_lock:
            self._settle_battery()  # the old rate applies up to now
            self._battery_drain = value

    def mean_rssi(self) -> float:
        """RSSI in dBm without noise, at the current distance."""
        if self.distance is None:
            return float(self.rssi)
        return self.rssi - 10 * PATH_LOSS_EXPONENT * math.log10(max(self.distance, 0.01))

    def read_rssi(self) -> int:
        """One RSSI reading as the STU reports it (signed byte)."""
        value = self.mean_rssi()
        noise = self.host.faults.rssi_noise
        if noise > 0:
            value += float(self._rng.normal(0.0, noise))
        return max(-128, min(127, round(value)))

    @property
    def reachable(self) -> bool:
        """Powered and in radio range of the STU."""
        return self.mean_rssi() >= RSSI_SENSITIVITY and self.supply_voltage >= BATTERY_CUTOFF

    # -- Sensors ---------------------------------------------------------------------

    @property
    def available_sensors(self) -> int:
        """Number of hardware sensors (the highest signal number)."""
        return max(self.signals, default=0)

    def signal_for_channel(self, channel: int) -> Signal | None:
        """The signal measurement channel ``channel`` (1-3) currently carries."""
        return self.signals.get(self.sensor_configuration[channel - 1])

    def _raw_now(self, channel: int) -> int:
        signal = self.signal_for_channel(channel)
        if signal is None:
            return 0
        now = np.array([time.monotonic() - self._born])
        return int(signal.raw(now, self.reference_voltage, self._rng)[0])

    # -- Streaming -------------------------------------------------------------------

    @property
    def streamer(self) -> Streamer | None:
        """The running stream, if any."""
        streamer = self._streamer
        return streamer if streamer is not None and streamer.running else None

    @property
    def streaming(self) -> bool:
        """Tell whether the device streams right now."""
        return self.streamer is not None

    def stop_stream(self) -> None:
        """Stop streaming (no-op when not streaming)."""
        with self._stream_lock:
            streamer, self._streamer = self._streamer, None
        if streamer is not None:
            streamer.stop()

    def _start_stream(self, stream_format: int) -> Reply:
        self.stop_stream()
        try:
            streamer = Streamer(
                self,
                stream_format,
                self.host,
                self.host.rate_multiplier,
                self._seed.spawn(1)[0],
                on_link_lost=lambda: self.host.on_link_lost(self),
            )
        except ValueError:
            return error_reply(bytes([stream_format]))
        with self._stream_lock:
            self._streamer = streamer
            self.last_stream = streamer
        # No separate acknowledgement: like hardware, the first data frame is
        # the answer (the library accepts any Streaming/Data frame).
        return Reply(None, after=streamer.start)

    # -- Requests --------------------------------------------------------------------

    def handle(self, block: int, command: int, data: bytes) -> Reply:
        """Answer one request addressed to "STH 1"."""
        if block == Block.SYSTEM:
            if command == System.BLUETOOTH:
                return self._bluetooth(data)
            if command == System.RESET:
                return Reply(b"", after=self._reset)
        elif block == Block.STREAMING:
            if command == Streaming.DATA:
                return self._streaming_data(data)
            if command == Streaming.VOLTAGE:
                return self._voltage(data)
        elif block == Block.CONFIGURATION:
            if command == Configuration.ADC:
                return self._adc_request(data)
            if command == Configuration.SENSOR:
                return self._sensor_request(data)
            if command == Configuration.CALIBRATION:
                return self._calibration(data)
        common = self.handle_common(block, command, data)
        return common if common is not None else error_reply(data)

    def _reset(self) -> None:
        # The device reboots: streaming ends and the Bluetooth link drops.
        self.stop_stream()
        self.self_test.clear()
        self.host.on_link_lost(self)

    def _bluetooth(self, data: bytes) -> Reply:
        data = bytes(data).ljust(8, b"\0")
        subcommand, number = data[0], data[1]
        named = self.handle_name(data)
        if named is not None:
            return named
        if subcommand == Bluetooth.RSSI:
            return Reply(bytes([subcommand, number, self.read_rssi() & 0xFF]) + bytes(5))
        if subcommand == Bluetooth.MAC:
            return Reply(bytes([subcommand, number]) + self.mac[::-1])
        if subcommand in (Bluetooth.GET_ENERGY_REDUCED, Bluetooth.GET_ENERGY_LOWEST):
            offset = (
                _REDUCED_OFFSET if subcommand == Bluetooth.GET_ENERGY_REDUCED else _LOWEST_OFFSET
            )
            return Reply(bytes([subcommand, number]) + self.eeprom.read(0, offset, 6))
        if subcommand in (Bluetooth.SET_ENERGY_REDUCED, Bluetooth.SET_ENERGY_LOWEST):
            offset = (
                _REDUCED_OFFSET if subcommand == Bluetooth.SET_ENERGY_REDUCED else _LOWEST_OFFSET
            )
            self.eeprom.write(0, offset, data[2:8])
            return Reply(data)
        return error_reply(data)

    def _streaming_data(self, data: bytes) -> Reply:
        stream_format = data[0] if data else 0
        decoded = StreamFormat.decode(stream_format)
        if decoded.streaming:
            if decoded.sets == 0:
                self.stop_stream()
                return Reply(bytes([stream_format]))
            return self._start_stream(stream_format)
        # Single request: one set, always three 16-bit slots (unused ones 0).
        values = [self._raw_now(channel) for channel in decoded.enabled][:3]
        values += [0] * (3 - len(values))
        counter = self._single_counter
        self._single_counter = (counter + 1) & 0xFF
        payload = b"".join(value.to_bytes(2, "little") for value in values)
        return Reply(bytes([stream_format, counter]) + payload)

    def _voltage(self, data: bytes) -> Reply:
        stream_format = data[0] if data else 0
        if StreamFormat.decode(stream_format).streaming:
            return error_reply(data)  # voltage streaming is not simulated
        voltage = self.supply_voltage
        if self.host.faults.low_battery:
            voltage = self.host.faults.low_battery_voltage
        vref = self.reference_voltage
        raw = max(0, min(ADC_MAX, round(voltage / (SUPPLY_DIVIDER * vref) * ADC_MAX)))
        counter = self._single_counter
        self._single_counter = (counter + 1) & 0xFF
        # Four bytes, like hardware: format, counter, one 16-bit value.
        return Reply(bytes([stream_format, counter]) + raw.to_bytes(2, "little"))

    def _adc_request(self, data: bytes) -> Reply:
        data = bytes(data).ljust(8, b"\0")
        if data[0] & 0x80:
            if not self._apply_adc(data):
                return error_reply(data)
            return Reply(data)
        return Reply(self.adc_bytes + bytes(3))

    def _sensor_request(self, data: bytes) -> Reply:
        data = bytes(data).ljust(8, b"\0")
        if not self.supports_channel_mapping:
            return error_reply(data)
        if data[0] & 0x80:
            requested = data[1:4]
            if any(sensor > self.available_sensors for sensor in requested):
                return error_reply(data)
            for index, sensor in enumerate(requested):
                if sensor != 0:  # 0 keeps the current sensor
                    self.sensor_configuration[index] = sensor
            return Reply(data)
        return Reply(bytes([0, *self.sensor_configuration]) + bytes(4))

    def _calibration(self, data: bytes) -> Reply:
        data = bytes(data).ljust(8, b"\0")
        method = (data[0] >> 5) & 0b11
        element, dimension = data[1], data[2]
        if element != 0 or not 1 <= dimension <= 3:
            return error_reply(data)  # only the accelerometer data is simulated
        if method == 1:
            self.self_test.add(dimension)
            return Reply(data[:4] + bytes(4))
        if method == 2:
            self.self_test.discard(dimension)
            return Reply(data[:4] + bytes(4))
        if method == 3:
            vref = data[3] / 20 if data[3] else self.reference_voltage
            signal = self.signal_for_channel(dimension)
            volts = 0.0
            if signal is not None:
                now = np.array([time.monotonic() - self._born])
                volts = float(signal.to_volts(signal.physical(now))[0])
            if dimension in self.self_test:
                volts += self.SELF_TEST_VOLTS
            raw = int(volts_to_raw(np.array([volts]), vref)[0])
            return Reply(data[:4] + raw.to_bytes(4, "little"))
        return error_reply(data)
