"""Errors of the log domain (details as :mod:`icoapi.core.errors` says)."""

from __future__ import annotations

from icoapi.core.errors import IcoapiError, NotFoundError


class InvalidLogPathError(IcoapiError):
    status_code = 403
    default_detail = "Invalid log file path."


class LogNotFoundError(NotFoundError):
    default_detail = "Log file not found."


class NoLogFilesError(NotFoundError):
    default_detail = "No log files found."


class LogReadError(IcoapiError):
    status_code = 500
    default_detail = "Error reading log file."
