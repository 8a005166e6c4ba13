"""Errors of the configuration domain (details as :mod:`icoapi.core.errors` says)."""

from __future__ import annotations

from icoapi.core.errors import (
    BadRequestError,
    IcoapiError,
    NotFoundError,
    UnprocessableError,
)


class UnsupportedConfigMediaError(IcoapiError):
    status_code = 415
    default_detail = "Unsupported media type for configuration upload."


class InvalidYamlError(BadRequestError):
    default_detail = "Failed to parse YAML payload."


class ConfigTooLargeError(IcoapiError):
    status_code = 413
    default_detail = "Configuration file is too large (the limit is 1 MiB)."


class ConfigSchemaError(UnprocessableError):
    """The document does not satisfy its schema. The detail is the schema's
    message followed by ``Errors: <e1>; <e2>; …``."""

    default_detail = "Provided YAML does not satisfy the configuration schema."


class ConfigFileNotFoundError(NotFoundError):
    default_detail = "Configuration file not found."


class ConfigUnreadableError(UnprocessableError):
    default_detail = (
        "Configuration file dataspace.yaml is not valid YAML; it is not shown because "
        "it may contain secrets."
    )


class ConfigWriteError(IcoapiError):
    status_code = 500
    default_detail = "Failed to store configuration file."


class ConfigListError(IcoapiError):
    status_code = 500
    default_detail = "Failed to list configuration backups."


class ConfigBackupNotFoundError(NotFoundError):
    default_detail = "Requested configuration backup not found."


class InvalidConfigRestoreError(BadRequestError):
    default_detail = "Invalid configuration restore request."


class ConfigRestoreError(IcoapiError):
    status_code = 500
    default_detail = "Failed to restore configuration file."
