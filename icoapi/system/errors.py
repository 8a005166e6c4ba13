"""Errors of the hardware-control domain (details as :mod:`icoapi.core.errors` says)."""

from __future__ import annotations

from icoapi.core.errors import (
    IcoapiError,
    IncorrectStateError,
    NotFoundError,
    ServiceUnavailableError,
)

__all__ = [
    "CanLinkUnavailableError",
    "CanNoResponseError",
    "DeviceUnreachableError",
    "HardwareTimeoutError",
    "IncorrectStateError",
    "MeasurementRunningError",
    "UnsupportedFeatureError",
]


class DeviceUnreachableError(NotFoundError):
    default_detail = "STH could not be connected and must be out of reach or discharged."


class CanNoResponseError(IcoapiError):
    status_code = 502
    default_detail = "The CAN network did not respond to the request."


class HardwareTimeoutError(IcoapiError):
    status_code = 504
    default_detail = "The ICOtronic system did not complete the operation in time."


class CanLinkUnavailableError(ServiceUnavailableError):
    default_detail = (
        "The CAN link is not available. Check that the CAN adapter is connected and "
        "CAN_INTERFACE/CAN_CHANNEL are right, then retry with PUT /api/v1/reset-can."
    )


class MeasurementRunningError(IncorrectStateError):
    """Refused because a measurement is running. MyTooliT ICOapi 0.2.1 answers this
    case with its general 400 "Incorrect request for current ICOtronic system
    state.", and so does this error."""


class UnsupportedFeatureError(IcoapiError):
    status_code = 400
    default_detail = "Unsupported STH sensor configuration."
