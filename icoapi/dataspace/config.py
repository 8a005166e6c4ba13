"""``dataspace.yaml``: its schema, built from the connector registry, and its
credentials, found by what the connection models declare (``SecretStr`` fields),
not by the names of keys."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag, create_model

from icoapi.configuration.kinds import MASK, ConfigKind, SecretPolicy, model_problems
from icoapi.configuration.schemas import OptionalStr
from icoapi.core.documents import TAG_PREFIX, Problem
from icoapi.dataspace.connectors import CONNECTORS, DEFAULT_CONNECTOR
from icoapi.dataspace.connectors.base import ConnectionSettings

DISABLED_TAG = f"{TAG_PREFIX}disabled>"
UNKNOWN_TAG = f"{TAG_PREFIX}unknown>"


class DisabledConnection(BaseModel):
    """A switched-off connection: the other keys may be anything (or empty)."""

    model_config = ConfigDict(extra="allow")

    enabled: Annotated[bool, Field(strict=True)]
    connector: OptionalStr = None


# An enabled connection naming no registered connector is checked as the default
# connector's, with ``connector`` listing the registered names.
_UnknownConnection: type[ConnectionSettings] = create_model(
    "UnknownConnection",
    __base__=CONNECTORS[DEFAULT_CONNECTOR].connection,
    connector=(Literal[tuple(CONNECTORS)], ...),  # type: ignore[arg-type]
)


def _tag(name: str) -> str:
    return f"{TAG_PREFIX}{name}>"


def _connection_tag(value: Any) -> str:
    if not isinstance(value, dict) or value.get("enabled") is not True:
        return DISABLED_TAG
    name = value.get("connector", DEFAULT_CONNECTOR)
    return _tag(name) if isinstance(name, str) and name in CONNECTORS else UNKNOWN_TAG


_CONNECTION_MODELS = (
    *(Annotated[plugin.connection, Tag(_tag(name))] for name, plugin in CONNECTORS.items()),
    Annotated[_UnknownConnection, Tag(UNKNOWN_TAG)],
    Annotated[DisabledConnection, Tag(DISABLED_TAG)],
)
AnyConnection = Annotated[Union[_CONNECTION_MODELS], Discriminator(_connection_tag)]  # type: ignore[valid-type]  # noqa: UP007


class DataspaceBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    connection: AnyConnection


def enabled_connection(data: Any) -> ConnectionSettings | None:
    """The connection of a valid document, None if it is switched off."""
    connection = DataspaceBody.model_validate(data).connection
    return connection if isinstance(connection, ConnectionSettings) else None


# -- credentials ---------------------------------------------------------------------------


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    if get_origin(annotation) in (Union, types.UnionType, Annotated):
        return any(_is_secret(argument) for argument in get_args(annotation))
    return False


def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """The keys a connection model declares as credentials."""
    return frozenset(
        name for name, field in model.model_fields.items() if _is_secret(field.annotation)
    )


ALL_SECRET_FIELDS = frozenset().union(
    *(secret_fields(plugin.connection) for plugin in CONNECTORS.values())
)


def _secret_keys(connection: dict[str, Any]) -> frozenset[str]:
    """The credential keys of a ``connection`` mapping: those of its connector,
    or of every connector when it names none that is registered (a disabled or
    broken file is protected as well as a valid one)."""
    name = connection.get("connector") or (
        DEFAULT_CONNECTOR if connection.get("enabled") is True else None
    )
    plugin = CONNECTORS.get(name) if isinstance(name, str) else None
    return secret_fields(plugin.connection) if plugin is not None else ALL_SECRET_FIELDS


def _connection_of(data: Any) -> dict[str, Any] | None:
    connection = data.get("connection") if isinstance(data, dict) else None
    return connection if isinstance(connection, dict) else None


def secret_values(data: Any) -> set[str]:
    """The credential values of a parsed ``dataspace.yaml`` (for log redaction)."""
    connection = _connection_of(data)
    if connection is None:
        return set()
    return {
        str(connection[key])
        for key in _secret_keys(connection)
        if isinstance(connection.get(key), str | int | float)
        and not isinstance(connection.get(key), bool)
        and connection.get(key) != ""
    }


def mask_secrets(data: Any) -> Any:
    """A copy of a parsed ``dataspace.yaml`` with every non-empty credential
    replaced by ``***``."""
    connection = _connection_of(data)
    if connection is None:
        return data
    keys = _secret_keys(connection)
    masked = {
        key: MASK if key in keys and value not in (None, "") else value
        for key, value in connection.items()
    }
    return {**data, "connection": masked}


def _dataspace_problems(data: Any) -> list[Problem]:
    return model_problems(DataspaceBody, data)


DATASPACE = ConfigKind(
    filename="dataspace.yaml",
    endpoint="dataspace",
    title="Data Space Configuration",
    description="Configuration file containing your data space connection settings.",
    schema_message="Provided YAML does not satisfy dataspace schema.",
    validate_body=_dataspace_problems,
    download_summary="``dataspace.yaml`` with passwords, keys and other credentials shown "
    "as ``***``.",
    upload_summary="Replace ``dataspace.yaml`` (the old file is kept as a backup); its "
    "credentials are kept out of the logs from then on.",
    secrets=SecretPolicy(values=secret_values, mask=mask_secrets),
)
