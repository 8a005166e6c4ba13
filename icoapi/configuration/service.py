"""``ConfigService``: the three configuration files, their uploads and backups.

Upload pipeline: media type → size → YAML → schema (every problem listed with
its path and line) → atomic store. Storing writes a temporary file in the same
folder, syncs it and renames it over the target, so a crash leaves either the old
or the new file, never half of one. The replaced file is copied to ``backup/``
first, and only the newest ``max_backups`` backups per file are kept.

The dataspace password never reaches a log line: it is registered with the
log redactor at startup and after every change, and ``GET /config/dataspace``
masks it. File work runs in worker threads; events are published on the loop."""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from itertools import count
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from icoapi.configuration.errors import (
    ConfigBackupNotFoundError,
    ConfigFileNotFoundError,
    ConfigListError,
    ConfigRestoreError,
    ConfigSchemaError,
    ConfigTooLargeError,
    ConfigUnreadableError,
    ConfigWriteError,
    InvalidConfigRestoreError,
    InvalidYamlError,
    UnsupportedConfigMediaError,
)
from icoapi.configuration.schemas import (
    DISABLED_VERSION,
    ConfigBackup,
    ConfigFile,
    ConfigFileInfoHeader,
    ConfigResponse,
    DataspaceBody,
    HeaderDocument,
    MetadataBody,
)
from icoapi.core.documents import (
    DocumentInvalid,
    Problem,
    YamlDocument,
    YamlSyntaxError,
    decode_yaml_bytes,
    parse_yaml,
    problems_from_validation_error,
)
from icoapi.core.events import CloudChanged, EventBus
from icoapi.core.logging import SecretRedactor
from icoapi.core.names import is_plain_file_name
from icoapi.core.paths import AppPaths
from icoapi.core.tasks import run_blocking
from icoapi.sensors.errors import SensorConfigError
from icoapi.sensors.schemas import parse_sensor_file
from icoapi.sensors.service import SensorCatalog

logger = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 1024 * 1024
UPLOAD_CHUNK_BYTES = 64 * 1024
MAX_BACKUPS = 20
ALLOWED_MEDIA_TYPES = frozenset(
    {
        "application/x-yaml",
        "application/yaml",
        "text/yaml",
        "text/x-yaml",
        "application/octet-stream",
        "text/plain",
    }
)
BACKUP_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
# Keys whose values are credentials, anywhere in a document.
# Files holding credentials (dataspace.yaml and its backups): owner only.
SECRET_FILE_MODE = 0o600
SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?$|token|secret|api[-_]?key|access[-_]?key|credential", re.I
)
MASK = "***"

Validator = Callable[[Any], list[Problem]]


def _model_problems(model: type[BaseModel], data: Any) -> list[Problem]:
    try:
        model.model_validate(data)
    except ValidationError as error:
        return problems_from_validation_error(error)
    return []


def _metadata_problems(data: Any) -> list[Problem]:
    problems = _model_problems(MetadataBody, data)
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


def _dataspace_problems(data: Any) -> list[Problem]:
    return _model_problems(DataspaceBody, data)


@dataclass(frozen=True)
class ConfigKind:
    """One of the managed configuration files. The routes ``GET`` and ``POST
    /config/<endpoint>`` and the default file installed at first start are made
    from this table (:data:`KINDS`), so a new kind is one entry."""

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
    holds_secrets: bool = False
    """Downloads show credentials as ``***``; the file and its backups are 0600
    and its secrets are registered for log redaction."""

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
DATASPACE = ConfigKind(
    filename="dataspace.yaml",
    endpoint="dataspace",
    title="Data Space Configuration",
    description="Configuration file containing your data space connection settings.",
    schema_message="Provided YAML does not satisfy dataspace schema.",
    validate_body=_dataspace_problems,
    download_summary="``dataspace.yaml`` with passwords, tokens and secrets shown as ``***``.",
    upload_summary="Replace ``dataspace.yaml`` (the old file is kept as a backup); its "
    "passwords and tokens are kept out of the logs from then on.",
    holds_secrets=True,
)
KINDS = (METADATA, SENSORS, DATASPACE)
CONFIG_FILE_NAMES = tuple(kind.filename for kind in KINDS)


def validate_document(kind: ConfigKind, document: YamlDocument) -> ConfigFileInfoHeader:
    """The document's header if the document satisfies ``kind``'s schema.

    :raises ConfigSchemaError: listing every problem with path and line.
    """
    if document.data is None:
        problems = [Problem((), "YAML document must not be empty")]
    else:
        problems = [
            *document.duplicate_keys,
            *_model_problems(HeaderDocument, document.data),
            *kind.validate_body(document.data),
        ]
    if problems:
        located = DocumentInvalid(document.locate(problems)).problems
        raise ConfigSchemaError(
            f"{kind.schema_message} Errors: " + "; ".join(str(p) for p in located)
        )
    return ConfigFileInfoHeader.from_header(HeaderDocument.model_validate(document.data).info)


def secrets_in(data: Any) -> set[str]:
    """Values of credential keys (password, token, secret, ...) at any depth."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if (
                isinstance(key, str)
                and SECRET_KEY.search(key)
                and isinstance(value, str | int | float)
                and not isinstance(value, bool)
            ):
                found.add(str(value))
            else:
                found |= secrets_in(value)
    elif isinstance(data, list):
        for item in data:
            found |= secrets_in(item)
    return found


def mask_secrets(data: Any) -> Any:
    """A copy with every non-empty credential value replaced by ``***``."""
    if isinstance(data, dict):
        return {
            key: MASK
            if isinstance(key, str) and SECRET_KEY.search(key) and value not in (None, "")
            else mask_secrets(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [mask_secrets(item) for item in data]
    return data


def check_media_type(content_type: str | None) -> None:
    """:raises UnsupportedConfigMediaError: a declared type that is not YAML-like."""
    if not content_type:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type and media_type not in ALLOWED_MEDIA_TYPES:
        raise UnsupportedConfigMediaError()


def size_text(size: int) -> str:
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} bytes"


async def read_limited(read: Callable[[int], Awaitable[bytes]], limit: int) -> bytes:
    """Read an upload chunk by chunk; stop as soon as it exceeds ``limit``.

    :raises ConfigTooLargeError:
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := await read(UPLOAD_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise ConfigTooLargeError(
                f"Configuration file is too large (the limit is {size_text(limit)})."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _fsync_directory(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ConfigService:
    """Reads, replaces, backs up and restores the configuration files."""

    def __init__(
        self,
        paths: AppPaths,
        sensors: SensorCatalog,
        redactor: SecretRedactor,
        events: EventBus,
        max_backups: int = MAX_BACKUPS,
        max_bytes: int = MAX_CONFIG_BYTES,
    ) -> None:
        self.paths = paths
        self.sensors = sensors
        self.redactor = redactor
        self.events = events
        self.max_backups = max_backups
        self.max_bytes = max_bytes
        # One writer at a time: two uploads must not interleave backup and rename.
        self._write_lock = threading.Lock()
        self._register_current_secrets()
        self._check_current_metadata()

    # -- lookup ---------------------------------------------------------------------------

    def path(self, kind: ConfigKind) -> Path:
        return self.paths.config / kind.filename

    # -- secrets --------------------------------------------------------------------------

    def _register_current_secrets(self) -> None:
        # Runs once at startup, before the service handles requests: a small read.
        path = self.path(DATASPACE)
        try:
            document = parse_yaml(decode_yaml_bytes(path.read_bytes()))
        except FileNotFoundError:
            return
        except (OSError, YamlSyntaxError) as error:
            logger.warning("Cannot read %s to protect its secrets: %s", path, error)
            return
        secrets = secrets_in(document.data)
        self.redactor.register(secrets)
        logger.debug("Registered %d dataspace secret(s) for log redaction", len(secrets))

    def _check_current_metadata(self) -> None:
        # Startup only, a small read. An older install keeps the metadata.yaml it
        # got first, which may be one the web client cannot render: say so.
        path = self.path(METADATA)
        try:
            if path.stat().st_size > self.max_bytes:
                return
            validate_document(METADATA, parse_yaml(decode_yaml_bytes(path.read_bytes())))
        except FileNotFoundError:
            return
        except (OSError, YamlSyntaxError, ConfigSchemaError) as error:
            detail = error.detail if isinstance(error, ConfigSchemaError) else str(error)
            logger.warning(
                "%s cannot be used by the web client; upload a corrected file "
                "(POST /api/v1/config/meta). %s",
                path,
                detail,
            )

    # -- download -------------------------------------------------------------------------

    async def read(self, kind: ConfigKind) -> bytes:
        """The file's bytes. :raises ConfigFileNotFoundError:"""
        return await run_blocking(self._read, kind)

    def _read(self, kind: ConfigKind) -> bytes:
        try:
            return self.path(kind).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as error:
            raise ConfigFileNotFoundError(
                f"Configuration file {kind.filename} not found."
            ) from error

    async def read_masked(self, kind: ConfigKind) -> bytes:
        """The file as YAML with credentials replaced by ``***`` (comments are lost).

        :raises ConfigFileNotFoundError:
        :raises ConfigUnreadableError: not valid YAML, so secrets cannot be found.
        """
        return await run_blocking(self._read_masked, kind)

    def _read_masked(self, kind: ConfigKind) -> bytes:
        raw = self._read(kind)
        try:
            document = parse_yaml(decode_yaml_bytes(raw))
        except YamlSyntaxError as error:
            raise ConfigUnreadableError(
                f"Configuration file {kind.filename} is not valid YAML ({error}); it is "
                "not shown because it may contain secrets."
            ) from error
        text = yaml.safe_dump(mask_secrets(document.data), sort_keys=False, allow_unicode=True)
        return text.encode("utf-8")

    # -- upload ---------------------------------------------------------------------------

    async def upload(
        self,
        kind: ConfigKind,
        content_type: str | None,
        read: Callable[[int], Awaitable[bytes]],
    ) -> ConfigFileInfoHeader:
        """Validate an uploaded file and make it the current one.

        :raises UnsupportedConfigMediaError: (415)
        :raises ConfigTooLargeError: (413)
        :raises InvalidYamlError: (400) empty or not YAML.
        :raises ConfigSchemaError: (422)
        :raises ConfigWriteError: (500)
        """
        check_media_type(content_type)
        payload = await read_limited(read, self.max_bytes)
        logger.debug("Received %s upload (%d bytes)", kind.filename, len(payload))
        header = await run_blocking(self._accept_upload, kind, payload)
        self._announce(kind)
        return header

    def _accept_upload(self, kind: ConfigKind, payload: bytes) -> ConfigFileInfoHeader:
        if not payload.strip():
            raise InvalidYamlError()
        try:
            document = parse_yaml(decode_yaml_bytes(payload))
        except YamlSyntaxError as error:
            logger.info("Rejected %s upload: not valid YAML (%s)", kind.filename, error)
            raise InvalidYamlError() from error
        try:
            header = validate_document(kind, document)
        except ConfigSchemaError as error:
            logger.info("Rejected %s upload: %s", kind.filename, error.detail)
            raise
        try:
            backup = self._store(kind, payload, document)
        except OSError as error:
            logger.error("Could not store %s: %s", kind.filename, error)
            raise ConfigWriteError() from error
        logger.info(
            "Stored new %s (%s, version %s)%s",
            kind.filename,
            header.config_name,
            header.config_version,
            f"; previous file kept as backup/{backup}" if backup else "",
        )
        return header

    # -- store ----------------------------------------------------------------------------

    def _store(self, kind: ConfigKind, payload: bytes, document: YamlDocument) -> str | None:
        """Atomically replace the file, keeping the old one as a backup. Returns the
        backup's name. The caller has validated ``document`` (parsed ``payload``)."""
        if kind.holds_secrets:
            # Before anything could log it.
            self.redactor.register(secrets_in(document.data))
        target = self.path(kind)
        with self._write_lock:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(
                prefix=f".{kind.filename}.", suffix=".tmp", dir=target.parent
            )
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(payload)
                    file.flush()
                    os.fsync(file.fileno())
                backup = None
                if kind.holds_secrets:
                    # The credentials file stays private, whatever mode it had (0600
                    # from mkstemp).
                    os.chmod(temporary, SECRET_FILE_MODE)
                elif target.is_file():
                    os.chmod(temporary, stat.S_IMODE(target.stat().st_mode))
                else:
                    # mkstemp creates 0600; only the credentials file should stay private.
                    os.chmod(temporary, 0o644)
                if target.is_file():
                    backup = self._backup(kind, target)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            _fsync_directory(target.parent)
            self._prune_backups(kind)
        if kind is SENSORS:
            self._reload_sensors()
        return backup

    def _backup(self, kind: ConfigKind, source: Path) -> str:
        folder = self.paths.config_backup
        folder.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC).replace(microsecond=0)
        stamp = now.strftime(BACKUP_TIME_FORMAT)
        # Continue after the highest counter of this second: reusing a number that
        # pruning freed would make the new backup sort as the oldest one.
        used = [
            key[1]
            for name in os.listdir(folder)
            if (key := kind.backup_key(name)) is not None and key[0] == now
        ]
        for attempt in count(max(used) + 1 if used else 0):
            name = f"{kind.stem}__{stamp}{f'_{attempt}' if attempt else ''}{kind.suffix}"
            destination = folder / name
            try:
                # Exclusive create: two backups in the same second never collide.
                with open(destination, "xb") as target, open(source, "rb") as origin:
                    shutil.copyfileobj(origin, target)
                    target.flush()
                    os.fsync(target.fileno())
            except FileExistsError:
                continue
            except BaseException:
                destination.unlink(missing_ok=True)
                raise
            if kind.holds_secrets:
                os.chmod(destination, SECRET_FILE_MODE)
            else:
                shutil.copymode(source, destination)
            return name
        raise AssertionError("unreachable")

    def _backups(self, kind: ConfigKind) -> list[tuple[str, datetime]]:
        """This file's backups, newest first."""
        folder = self.paths.config_backup
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        keyed = []
        for name in names:
            key = kind.backup_key(name)
            if key is not None and (folder / name).is_file():
                keyed.append((key, name))
        keyed.sort(reverse=True)
        return [(name, key[0]) for key, name in keyed]

    def _prune_backups(self, kind: ConfigKind) -> None:
        for name, _ in self._backups(kind)[self.max_backups :]:
            try:
                (self.paths.config_backup / name).unlink()
            except OSError as error:
                logger.warning("Could not delete old backup %s: %s", name, error)
            else:
                logger.info("Deleted old configuration backup %s", name)

    def _reload_sensors(self) -> None:
        try:
            self.sensors.reload()
        except SensorConfigError as error:  # validated before storing; should not happen
            logger.error("Stored sensors.yaml cannot be loaded: %s", error.detail)

    def _announce(self, kind: ConfigKind) -> None:
        # On the event loop: state listeners schedule pushes there.
        if kind is DATASPACE:
            self.events.publish(CloudChanged())

    # -- backups --------------------------------------------------------------------------

    async def list_files(self) -> ConfigResponse:
        """The three files with their headers and backups.

        :raises ConfigListError: the configuration folder cannot be read.
        """
        return await run_blocking(self._list_files)

    def _list_files(self) -> ConfigResponse:
        try:
            return ConfigResponse(files=[self._describe(kind) for kind in KINDS])
        except OSError as error:
            logger.error("Could not list configuration files: %s", error)
            raise ConfigListError() from error

    def _describe(self, kind: ConfigKind) -> ConfigFile:
        path = self.path(kind)
        try:
            modified: str | None = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()
            header, error = self._read_header(kind, path)
        except FileNotFoundError:
            modified, header, error = None, None, f"{kind.filename} does not exist."
        backups = []
        for name, stamp in self._backups(kind):
            backup_header, backup_error = self._read_header(kind, self.paths.config_backup / name)
            backups.append(
                ConfigBackup(
                    filename=name,
                    timestamp=stamp.isoformat(),
                    info_header=backup_header,
                    error=backup_error,
                )
            )
        return ConfigFile(
            name=kind.title,
            filename=kind.filename,
            backup=backups,
            endpoint=kind.endpoint,
            timestamp=modified,
            description=kind.description,
            info_header=header,
            error=error,
        )

    def _read_header(
        self, kind: ConfigKind, path: Path
    ) -> tuple[ConfigFileInfoHeader | None, str | None]:
        """The file's header, or why there is none. Never raises for file content."""
        try:
            if path.stat().st_size > self.max_bytes:
                return None, f"The file is larger than {size_text(self.max_bytes)}."
            document = parse_yaml(decode_yaml_bytes(path.read_bytes()))
        except FileNotFoundError:
            return None, "The file does not exist."
        except OSError as error:
            return None, f"The file cannot be read: {error.strerror or error}."
        except YamlSyntaxError as error:
            return None, f"Not valid YAML: {error}."
        if document.data is None:
            return None, "The file is empty."
        problems = _model_problems(HeaderDocument, document.data)
        if problems:
            return None, "Invalid header: " + "; ".join(
                str(problem) for problem in document.locate(problems)
            )
        header = HeaderDocument.model_validate(document.data).info
        return ConfigFileInfoHeader.from_header(header), None

    # -- restore --------------------------------------------------------------------------

    async def restore(self, filename: str, backup_filename: str) -> None:
        """Make a backup the current file again (after validating it); the current
        file becomes a new backup.

        :raises InvalidConfigRestoreError: (400) unknown file or malformed name.
        :raises ConfigBackupNotFoundError: (404)
        :raises ConfigSchemaError: (422) the backup does not satisfy the schema.
        :raises ConfigRestoreError: (500)
        """
        kind = next((kind for kind in KINDS if kind.filename == filename), None)
        if kind is None:
            raise InvalidConfigRestoreError()
        await run_blocking(self._restore, kind, backup_filename)
        self._announce(kind)

    def _backup_path(self, kind: ConfigKind, name: str) -> Path:
        """The checked path of a backup of ``kind``.

        The name must be a plain backup file name of this kind: no separators,
        ``..`` or drive; and the file must resolve to a regular file inside the
        backup folder (a symlink leading elsewhere does not count)."""
        if not is_plain_file_name(name) or kind.backup_key(name) is None:
            raise InvalidConfigRestoreError()
        folder = self.paths.config_backup
        try:
            resolved = (folder / name).resolve(strict=True)
            inside = resolved.is_relative_to(folder.resolve(strict=True))
        except (OSError, RuntimeError) as error:
            raise ConfigBackupNotFoundError() from error
        if not inside or not resolved.is_file():
            raise ConfigBackupNotFoundError()
        return resolved

    def _restore(self, kind: ConfigKind, backup_filename: str) -> None:
        path = self._backup_path(kind, backup_filename)
        logger.debug("Restoring %s from backup %s", kind.filename, backup_filename)
        try:
            payload = path.read_bytes()
        except OSError as error:
            raise ConfigRestoreError() from error
        try:
            document = parse_yaml(decode_yaml_bytes(payload))
        except YamlSyntaxError as error:
            raise ConfigSchemaError(
                f"{kind.schema_message} Errors: not valid YAML: {error}"
            ) from error
        header = validate_document(kind, document)
        try:
            backup = self._store(kind, payload, document)
        except OSError as error:
            logger.error("Could not restore %s: %s", kind.filename, error)
            raise ConfigRestoreError() from error
        logger.info(
            "Restored %s from backup %s (%s, version %s); previous file kept as backup/%s",
            kind.filename,
            backup_filename,
            header.config_name,
            header.config_version,
            backup,
        )
