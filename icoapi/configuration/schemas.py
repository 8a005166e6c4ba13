"""Configuration file schemas (the YAML documents) and the endpoint bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
)

from icoapi.core.documents import TAG_PREFIX


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("expected non-empty string")
    return value


def _iso_date(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError as error:
        raise ValueError(
            "expected date in ISO 8601 format, e.g. '2025-01-31T12:00:00+00:00'"
        ) from error
    return value


def no_outer_slash(value: str) -> str:
    # The service URL is built as protocol://domain/base_path.
    if value.startswith("/") or value.endswith("/"):
        raise ValueError("must not start or end with '/'")
    return value


def secret_not_blank(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError("expected non-empty string")
    return value


NonEmptyStr = Annotated[str, Field(strict=True), AfterValidator(_non_blank)]
OptionalStr = Annotated[str, Field(strict=True)] | None


# --- the header every configuration file starts with -----------------------------------


class InfoHeader(BaseModel):
    """The ``info`` mapping. Quote values in YAML: unquoted dates and numbers are
    not strings."""

    model_config = ConfigDict(extra="allow")

    schema_name: NonEmptyStr
    schema_version: NonEmptyStr
    config_name: NonEmptyStr
    config_version: NonEmptyStr
    config_date: Annotated[NonEmptyStr, AfterValidator(_iso_date)]


class HeaderDocument(BaseModel):
    """Only the header of a document (the body is checked by its own model)."""

    info: InfoHeader


# --- metadata.yaml -----------------------------------------------------------------------

FIELD_KEYS = ("id", "label", "datatype", "type")
FIELD_TAG = f"{TAG_PREFIX}field>"
SECTION_TAG = f"{TAG_PREFIX}section>"


# The values the web client's input provider renders. Anything else is drawn as a
# label without an input: the operator can type nothing, and a required field
# can never be satisfied.
Datatype = Literal[
    "text",
    "text_box",
    "dropdown",
    "text_suggestions",
    "int",
    "float",
    "int_qty",
    "float_qty",
    "boolean",
    "image",
]
FieldRole = Literal["default", "implementation", "range"]
Requirement = Literal["required", "optional", "restricted"]
NEEDS_OPTIONS: frozenset[str] = frozenset({"dropdown", "text_suggestions"})
NEEDS_UNIT: frozenset[str] = frozenset({"int_qty", "float_qty"})
# ``info.config_version`` of a metadata file the client treats as switched off.
DISABLED_VERSION = "disabled"


class FieldDefinition(BaseModel):
    """One metadata form field. ``datatype`` picks the input widget, ``type`` the
    field's role, ``required`` whether it must be filled. Other keys (default,
    description, ...) are free."""

    model_config = ConfigDict(extra="allow")

    id: NonEmptyStr
    label: NonEmptyStr
    datatype: Datatype
    type: FieldRole
    required: Requirement
    options: list[Any] | None = None
    unit: NonEmptyStr | None = None

    def render_problems(self) -> list[tuple[str, str]]:
        """(key, message) for what the widget of ``datatype`` needs but lacks."""
        problems = []
        if self.datatype == "dropdown" and not self.options:
            problems.append(("options", "a dropdown needs a non-empty list of options"))
        elif self.datatype in NEEDS_OPTIONS and self.options is None:
            problems.append(("options", f"datatype {self.datatype} needs a list of options"))
        if self.datatype in NEEDS_UNIT and self.unit is None:
            problems.append(("unit", f"datatype {self.datatype} needs a unit"))
        return problems


def _entry_kind(value: Any) -> str | None:
    """A mapping is a field definition when one of the field keys holds a plain
    value (a nested section named e.g. ``type`` holds a mapping instead)."""
    if not isinstance(value, dict):
        return None
    if any(key in value and not isinstance(value[key], dict) for key in FIELD_KEYS):
        return FIELD_TAG
    return SECTION_TAG


type MetadataEntry = Annotated[
    Annotated[FieldDefinition, Tag(FIELD_TAG)]
    | Annotated[dict[str, MetadataEntry], Tag(SECTION_TAG)],
    Discriminator(
        _entry_kind,
        custom_error_type="metadata_entry",
        custom_error_message="expected mapping for field definition or nested section",
    ),
]
Section = dict[str, MetadataEntry]


class Profile(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: NonEmptyStr
    name: NonEmptyStr
    pre: dict[str, Section] | None = None
    post: dict[str, Section] | None = None


class MetadataBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    default_profile_id: NonEmptyStr
    profiles: Annotated[dict[str, Profile], Field(min_length=1)]

    def field_problems(self) -> list[tuple[tuple[str, ...], str]]:
        """(path, message) of every field definition the client cannot render."""
        problems: list[tuple[tuple[str, ...], str]] = []

        def visit(entries: dict[str, Any], path: tuple[str, ...]) -> None:
            for key, entry in entries.items():
                if isinstance(entry, FieldDefinition):
                    for name, message in entry.render_problems():
                        problems.append(((*path, key, name), message))
                elif isinstance(entry, dict):
                    visit(entry, (*path, key))

        for profile_key, profile in self.profiles.items():
            for part in ("pre", "post"):
                sections = getattr(profile, part)
                if sections:
                    visit(sections, ("profiles", profile_key, part))
        return problems


# --- endpoint bodies ---------------------------------------------------------------------


class ConfigFileInfoHeader(BaseModel):
    """The header of a configuration file, as shown to clients."""

    schema_name: str = Field(examples=["sensors_schema"])
    schema_version: str = Field(examples=["0.0.1"])
    config_name: str = Field(examples=["General Purpose Sensor File"])
    config_version: str = Field(examples=["0.0.1"])
    config_date: str = Field(examples=["2025-01-01T00:00:00+00:00"])

    @classmethod
    def from_header(cls, header: InfoHeader) -> ConfigFileInfoHeader:
        return cls(
            schema_name=header.schema_name,
            schema_version=header.schema_version,
            config_name=header.config_name,
            config_version=header.config_version,
            config_date=header.config_date,
        )


class ConfigBackup(BaseModel):
    filename: str = Field(examples=["sensors__20250131T120000Z.yaml"])
    timestamp: str = Field(description="When the backup was made (UTC, ISO 8601).")
    info_header: ConfigFileInfoHeader | None
    error: str | None = Field(None, description="Why info_header is null.")


class ConfigFile(BaseModel):
    name: str = Field(examples=["Sensor Configuration"])
    filename: str = Field(examples=["sensors.yaml"])
    backup: list[ConfigBackup] = Field(description="Backups, newest first.")
    endpoint: str = Field(
        description="Path segment for download and upload: /config/<endpoint>.",
        examples=["sensors"],
    )
    timestamp: str | None = Field(
        description="Last modification of the current file (UTC, ISO 8601); "
        "null if the file is missing."
    )
    description: str
    info_header: ConfigFileInfoHeader | None
    error: str | None = Field(None, description="Why info_header is null.")


class ConfigResponse(BaseModel):
    files: list[ConfigFile]


class ConfigRestoreRequest(BaseModel):
    filename: str = Field(examples=["sensors.yaml"])
    backup_filename: str = Field(examples=["sensors__20250131T120000Z.yaml"])


class DetailResponse(BaseModel):
    detail: str
