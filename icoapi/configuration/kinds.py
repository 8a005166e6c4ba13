"""The kinds of configuration file (:class:`ConfigKind`) and their validation:
YAML document → header → the kind's schema, every problem listed with its path
and line."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from icoapi.configuration.errors import ConfigSchemaError
from icoapi.configuration.schemas import (
    DISABLED_VERSION,
    ConfigFileInfoHeader,
    HeaderDocument,
    MetadataBody,
)
from icoapi.core.documents import (
    DocumentInvalid,
    Problem,
    YamlDocument,
    problems_from_validation_error,
)
from icoapi.sensors.schemas import parse_sensor_file

BACKUP_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
MASK = "***"


@dataclass(frozen=True)
class SecretPolicy:
    """How to find the credentials in a kind's documents (valid or not)."""

    values: Callable[[Any], set[str]]
    """The credential values of a parsed document (for log redaction)."""
    mask: Callable[[Any], Any]
    """A copy of a parsed document with every credential replaced by :data:`MASK`."""


Validator = Callable[[Any], list[Problem]]


def model_problems(model: type[BaseModel], data: Any) -> list[Problem]:
    try:
        model.model_validate(data)
    except ValidationError as error:
        return problems_from_validation_error(error)
    return []


def _metadata_problems(data: Any) -> list[Problem]:
    problems = model_problems(MetadataBody, data)
    if not problems:
        body = MetadataBody.model_validate(data)
        problems.extend(Problem(loc, message) for loc, message in body.field_problems())
        ids = set(body.profiles) | {profile.id for profile in body.profiles.values()}
        # A disabled file's default profile is never used (the web client's own
        # example names one that does not exist).
        if body.default_profile_id not in ids and not _metadata_disabled(data):
            problems.append(
                Problem(("default_profile_id",), f"unknown profile '{body.default_profile_id}'")
            )
    return problems


def _metadata_disabled(data: Any) -> bool:
    info = data.get("info") if isinstance(data, dict) else None
    return isinstance(info, dict) and info.get("config_version") == DISABLED_VERSION


def _sensor_problems(data: Any) -> list[Problem]:
    try:
        parse_sensor_file(data)
    except DocumentInvalid as error:
        return error.problems
    return []


@dataclass(frozen=True)
class ConfigKind:
    """One of the managed configuration files: its name, routes, documentation
    and schema. The application factory passes the kinds to the configuration
    service and router (``GET`` and ``POST /config/<endpoint>`` for each) and
    installs their default files; a domain whose file it is defines its kind
    (:data:`METADATA` and :data:`SENSORS` here, ``dataspace.yaml`` in
    :mod:`icoapi.dataspace.config`)."""

    filename: str
    endpoint: str
    title: str
    description: str
    schema_message: str
    validate_body: Validator
    download_summary: str
    """First line of the ``GET`` route's documentation."""
    upload_summary: str
    """First line of the ``POST`` route's documentation."""
    secrets: SecretPolicy | None = None
    """Which values are credentials. Downloads show them as ``***``, they are
    registered for log redaction, and the file and its backups are 0600."""

    @property
    def holds_secrets(self) -> bool:
        return self.secrets is not None

    @property
    def stem(self) -> str:
        return Path(self.filename).stem

    @property
    def suffix(self) -> str:
        return Path(self.filename).suffix

    @cached_property
    def backup_pattern(self) -> re.Pattern[str]:
        return re.compile(
            rf"{re.escape(self.stem)}__(?P<stamp>\d{{8}}T\d{{6}}Z)(?:_(?P<n>\d+))?"
            rf"{re.escape(self.suffix)}"
        )

    def backup_key(self, name: str) -> tuple[datetime, int] | None:
        """Sort key (time, collision counter) of a backup name, None if it is not
        one of this file's backups."""
        match = self.backup_pattern.fullmatch(name)
        if match is None:
            return None
        try:
            stamp = datetime.strptime(match["stamp"], BACKUP_TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return None
        return stamp, int(match["n"] or 0)


METADATA = ConfigKind(
    filename="metadata.yaml",
    endpoint="meta",
    title="Metadata Configuration",
    description="Configuration file containing your pre- and post-measurement metadata profiles.",
    schema_message="Provided YAML does not satisfy metadata schema.",
    validate_body=_metadata_problems,
    download_summary="``metadata.yaml``: the pre- and post-measurement metadata profiles.",
    upload_summary="Replace ``metadata.yaml`` (the old file is kept as a backup).",
)
SENSORS = ConfigKind(
    filename="sensors.yaml",
    endpoint="sensors",
    title="Sensor Configuration",
    description="Configuration file containing sensor definitions and tool holder configurations.",
    schema_message="Provided YAML does not satisfy sensors schema.",
    validate_body=_sensor_problems,
    download_summary="``sensors.yaml``: sensor definitions and holder configurations.",
    upload_summary="Replace ``sensors.yaml``; ``GET /sensor`` and new measurements use it "
    "at once (the old file is kept as a backup).",
)


def validate_document(kind: ConfigKind, document: YamlDocument) -> ConfigFileInfoHeader:
    """The document's header if the document satisfies ``kind``'s schema.

    :raises ConfigSchemaError: listing every problem with path and line.
    """
    if document.data is None:
        problems = [Problem((), "YAML document must not be empty")]
    else:
        problems = [
            *document.duplicate_keys,
            *model_problems(HeaderDocument, document.data),
            *kind.validate_body(document.data),
        ]
    if problems:
        located = DocumentInvalid(document.locate(problems)).problems
        raise ConfigSchemaError(
            f"{kind.schema_message} Errors: " + "; ".join(str(p) for p in located)
        )
    return ConfigFileInfoHeader.from_header(HeaderDocument.model_validate(document.data).info)
