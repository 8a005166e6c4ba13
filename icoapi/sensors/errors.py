"""Errors of the sensor domain."""

from __future__ import annotations

from icoapi.core.errors import UnprocessableError


class SensorConfigError(UnprocessableError):
    """``sensors.yaml`` cannot be used; the detail names the problem and line."""

    default_detail = "The sensor configuration file sensors.yaml is invalid."
