"""Simulated sensor signals, defined in physical units per hardware sensor.

A :class:`Signal` describes what one hardware sensor of a device measures
(offset + sine + Gaussian noise) together with the sensor's transfer function
(physical range → voltage range).  The raw ADC counts a device streams are
computed from the *current* reference voltage of its ADC configuration, so
values converted back with the service's ``sensors.yaml`` look physical and
follow ADC changes exactly like with hardware:

    volts = volt_min + (phys - phys_min) * (volt_max - volt_min) / (phys_max - phys_min)
    raw   = clip(round(volts / Vref * 65535), 0, 65535)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from .protocol import ADC_MAX

FloatArray = npt.NDArray[np.float64]
RawArray = npt.NDArray[np.uint16]


@dataclass
class Signal:
    """The signal of one hardware sensor, in physical units.

    Change the attributes at runtime (e.g. ``device.signals[1].noise = 0``);
    the streamer reads them for every batch of frames.
    """

    name: str
    unit: str
    phys_min: float
    phys_max: float
    volt_min: float
    volt_max: float
    offset: float = 0.0
    """Mean value (physical unit)."""
    amplitude: float = 0.0
    """Sine amplitude (physical unit)."""
    frequency: float = 0.0
    """Sine frequency in Hz."""
    phase: float = 0.0
    """Sine phase in radians."""
    noise: float = 0.0
    """Standard deviation of additive Gaussian noise (physical unit)."""

    def __post_init__(self) -> None:
        if self.phys_max == self.phys_min or self.volt_max == self.volt_min:
            raise ValueError(f"Signal “{self.name}” needs non-empty physical and volt ranges")

    def copy(self) -> Signal:
        """Return an independent copy (devices must not share signal objects)."""
        return replace(self)

    def physical(self, t: FloatArray) -> FloatArray:
        """Noiseless physical value at times ``t`` (seconds since stream start)."""
        if self.amplitude == 0.0:
            return np.full(t.shape, self.offset, dtype=np.float64)
        angle = (2.0 * math.pi * self.frequency) * t + self.phase
        return self.offset + self.amplitude * np.sin(angle)

    def to_volts(self, physical: FloatArray) -> FloatArray:
        """Map physical values onto the sensor's output voltage."""
        gain = (self.volt_max - self.volt_min) / (self.phys_max - self.phys_min)
        return self.volt_min + (physical - self.phys_min) * gain

    def from_volts(self, volts: float) -> float:
        """Map a sensor output voltage back to the physical value."""
        gain = (self.phys_max - self.phys_min) / (self.volt_max - self.volt_min)
        return self.phys_min + (volts - self.volt_min) * gain

    def raw(
        self,
        t: FloatArray,
        reference_voltage: float,
        rng: np.random.Generator | None = None,
    ) -> RawArray:
        """Raw 16-bit ADC counts at times ``t`` (noise drawn from ``rng``)."""
        physical = self.physical(t)
        if self.noise > 0.0 and rng is not None:
            physical = physical + rng.normal(0.0, self.noise, t.shape)
        return volts_to_raw(self.to_volts(physical), reference_voltage)


def volts_to_raw(volts: FloatArray, reference_voltage: float) -> RawArray:
    """Quantize voltages with the 16-bit ADC at ``reference_voltage``."""
    counts = np.rint(volts * (ADC_MAX / reference_voltage))
    return np.clip(counts, 0, ADC_MAX).astype(np.uint16)


def expected_physical(signal: Signal, t: float) -> float:
    """Noiseless physical value of ``signal`` at ``t`` seconds after stream start.

    Sample ``j`` of frame ``k`` of a stream is taken at
    ``t = (k * samples_per_frame + j) / samples_per_second_per_channel``; see
    :func:`sample_time`.
    """
    return float(signal.physical(np.array([t], dtype=np.float64))[0])


def sample_time(frame: int, sample: int, frame_rate: float, samples_per_frame: int) -> float:
    """Time (s since stream start) of sample ``sample`` in frame ``frame``.

    With one enabled channel a frame carries three consecutive samples of that
    channel (``samples_per_frame=3``); with two or three channels each frame
    carries one sample per channel (``samples_per_frame=1``).
    """
    return (frame * samples_per_frame + sample) / (frame_rate * samples_per_frame)


def raw_to_physical(signal: Signal, raw: float, reference_voltage: float) -> float:
    """Convert a raw ADC value back to the physical value (what a client does)."""
    return signal.from_volts(raw / ADC_MAX * reference_voltage)


def _acceleration(name: str, full_scale: float, volt_min: float, volt_max: float) -> Signal:
    return Signal(
        name=name,
        unit="g",
        phys_min=-full_scale,
        phys_max=full_scale,
        volt_min=volt_min,
        volt_max=volt_max,
    )


def default_signals() -> dict[int, Signal]:
    """Signals of the ten hardware sensors of the service's default ``sensors.yaml``.

    Sensor 1 is the ±100 g accelerometer carrying a 2 g, 50 Hz vibration, 2-4
    are ±40 g accelerometers with smaller vibrations at other frequencies, 5
    the temperature (~25 °C), 6 the photodiode, 7-9 backpack inputs and 10 the
    battery voltage (~3.9 V).
    """
    signals: dict[int, Signal] = {}
    first = _acceleration("Acceleration 100g", 100.0, 0.33, 2.97)
    first.amplitude, first.frequency, first.noise = 2.0, 50.0, 0.05
    signals[1] = first
    for number, axis, frequency in ((2, "Y", 30.0), (3, "Z", 70.0), (4, "X", 110.0)):
        signal = _acceleration(f"Acceleration 40g {axis}", 40.0, 0.1, 1.7)
        signal.amplitude, signal.frequency, signal.noise = 1.0, frequency, 0.02
        signals[number] = signal
    signals[5] = Signal(
        name="Temperature",
        unit="°C",
        phys_min=-40.0,
        phys_max=125.0,
        volt_min=0.772,
        volt_max=1.267,
        offset=25.0,
        amplitude=0.5,
        frequency=0.05,
        noise=0.05,
    )
    signals[6] = Signal(
        name="Photodiode",
        unit="-",
        phys_min=0.0,
        phys_max=1.0,
        volt_min=0.0,
        volt_max=3.3,
        offset=0.5,
        amplitude=0.1,
        frequency=1.0,
        noise=0.005,
    )
    for number in (7, 8, 9):
        signals[number] = Signal(
            name=f"Backpack {number - 6}",
            unit="/",
            phys_min=0.0,
            phys_max=1.0,
            volt_min=0.0,
            volt_max=3.3,
            offset=0.5,
            amplitude=0.2,
            frequency=5.0 * (number - 6),
            noise=0.005,
        )
    signals[10] = Signal(
        name="Battery Voltage",
        unit="V",
        phys_min=2.9,
        phys_max=4.2,
        volt_min=0.509,
        volt_max=0.737,
        offset=3.9,
        noise=0.002,
    )
    return signals
