"""The dataspace connectors, one module each, and the registry that names them.

A connector module holds its connection model (the keys of ``connection`` in
``dataspace.yaml``; secrets typed ``SecretStr``) and its connector class. A new
connector is one module and one entry in :data:`CONNECTORS`: the schema of
``dataspace.yaml``, secret masking and log redaction follow from the entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from icoapi.dataspace.connectors.base import ConnectionSettings, Connector, ConnectorOptions
from icoapi.dataspace.connectors.folder import FolderConnection, FolderConnector
from icoapi.dataspace.connectors.s3 import S3Connection, S3Connector
from icoapi.dataspace.connectors.trident import TridentConnection, TridentConnector


@dataclass(frozen=True)
class ConnectorPlugin:
    connection: type[ConnectionSettings]
    build: Callable[[ConnectionSettings, ConnectorOptions], Connector]


def _plugin[C: ConnectionSettings](
    connection: type[C], build: Callable[[C, ConnectorOptions], Connector]
) -> ConnectorPlugin:
    def checked(settings: ConnectionSettings, options: ConnectorOptions) -> Connector:
        assert isinstance(settings, connection)
        return build(settings, options)

    return ConnectorPlugin(connection, checked)


CONNECTORS: dict[str, ConnectorPlugin] = {
    "trident": _plugin(TridentConnection, TridentConnector),
    "s3": _plugin(S3Connection, S3Connector),
    "folder": _plugin(FolderConnection, FolderConnector),
}
DEFAULT_CONNECTOR = "trident"
"""The connector of an enabled connection without a ``connector`` key (files
written before there was a choice)."""


def build_connector(settings: ConnectionSettings, options: ConnectorOptions) -> Connector:
    return CONNECTORS[settings.connector].build(settings, options)
