"""Sensor definitions and ADC attributes shared by the storage tests."""

from __future__ import annotations

from typing import Any

from icoapi.hdf5.layout import SensorRow
from icoapi.sensors.schemas import sensor_coefficients

ACC100G = {
    "name": "Acceleration 100g",
    "sensor_id": "acc100g_01",
    "unit": "g",
    "dimension": "Acceleration",
    "phys_min": -100.0,
    "phys_max": 100.0,
    "volt_min": 0.33,
    "volt_max": 2.97,
    "sensor_type": "ADXL1001",
}
TEMPERATURE = {
    "name": "Temperature",
    "sensor_id": "temp_01",
    "unit": "°C",
    "dimension": "Temperature",
    "phys_min": -40.0,
    "phys_max": 125.0,
    "volt_min": 0.772,
    "volt_max": 1.267,
    "sensor_type": "ADXL358C",
}
PHOTO = {
    "name": "Photodiode",
    "sensor_id": "photo_01",
    "unit": "-",
    "dimension": "Light",
    "phys_min": 0.0,
    "phys_max": 1.0,
    "volt_min": 0.0,
    "volt_max": 3.3,
    "sensor_type": None,
}
DEFINITIONS = {"first": ACC100G, "second": TEMPERATURE, "third": PHOTO}
NUMBERS = {"first": 1, "second": 5, "third": 6}


def sensor_row(channel: str, definition: dict[str, Any], channel_number: int) -> SensorRow:
    """A row with the coefficients the sensors package computes for ``definition``."""
    k, d = sensor_coefficients(
        definition["phys_min"],
        definition["phys_max"],
        definition["volt_min"],
        definition["volt_max"],
    )
    return SensorRow(
        channel=channel, channel_number=channel_number, scaling_factor=k, offset=d, **definition
    )


def sensor_rows(channels: list[str]) -> list[SensorRow]:
    return [sensor_row(channel, DEFINITIONS[channel], NUMBERS[channel]) for channel in channels]


ADC_ATTRIBUTES = {
    "adc_reference_voltage": 3.3,
    "sample_rate": 9523.81,
    "adc_prescaler": 2,
    "adc_acquisition_time": 8,
    "adc_oversampling_rate": 64,
}
