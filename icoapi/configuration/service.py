"""``ConfigService``: the configuration files, their uploads and backups.

Upload pipeline: media type → size → YAML → schema (every problem listed with
its path and line) → atomic store. Storing writes a temporary file in the same
folder, syncs it and renames it over the target, so a crash leaves either the old
or the new file, never half of one. The replaced file is copied to ``backup/``
first, and only the newest ``max_backups`` backups per file are kept. Each
replacement is announced as :class:`ConfigChanged`.

The credentials a kind declares (:class:`SecretPolicy`) never reach a log line:
they are registered with the log redactor at startup and before a new file is
stored, and downloads mask them. File work runs in worker threads; events are
published on the loop."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import yaml

from icoapi.configuration.errors import (
    ConfigBackupNotFoundError,
    ConfigFileNotFoundError,
    ConfigListError,
    ConfigRestoreError,
    ConfigSchemaError,
    ConfigUnreadableError,
    ConfigWriteError,
    InvalidConfigRestoreError,
    InvalidYamlError,
)
from icoapi.configuration.kinds import (
    BACKUP_TIME_FORMAT,
    METADATA,
    ConfigKind,
    model_problems,
    validate_document,
)
from icoapi.configuration.payload import check_media_type, read_limited, size_text
from icoapi.configuration.schemas import (
    ConfigBackup,
    ConfigFile,
    ConfigFileInfoHeader,
    ConfigResponse,
    HeaderDocument,
)
from icoapi.core.disk import sync_directory
from icoapi.core.documents import (
    YamlDocument,
    YamlSyntaxError,
    decode_yaml_bytes,
    parse_yaml,
)
from icoapi.core.events import ConfigChanged, EventBus
from icoapi.core.logging import SecretRedactor
from icoapi.core.names import is_plain_file_name
from icoapi.core.paths import AppPaths
from icoapi.core.tasks import run_blocking

logger = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 1024 * 1024
MAX_BACKUPS = 20
# Files holding credentials (dataspace.yaml and its backups): owner only.
SECRET_FILE_MODE = 0o600


class ConfigService:
    """Reads, replaces, backs up and restores the configuration files."""

    def __init__(
        self,
        paths: AppPaths,
        kinds: Sequence[ConfigKind],
        redactor: SecretRedactor,
        events: EventBus,
        max_backups: int = MAX_BACKUPS,
        max_bytes: int = MAX_CONFIG_BYTES,
    ) -> None:
        self.paths = paths
        self.kinds = tuple(kinds)
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
        # Runs once at startup, before the service handles requests: small reads.
        for kind in self.kinds:
            if kind.secrets is None:
                continue
            path = self.path(kind)
            try:
                document = parse_yaml(decode_yaml_bytes(path.read_bytes()))
            except FileNotFoundError:
                continue
            except (OSError, YamlSyntaxError) as error:
                logger.warning("Cannot read %s to protect its secrets: %s", path, error)
                continue
            secrets = kind.secrets.values(document.data)
            self.redactor.register(secrets)
            logger.debug(
                "Registered %d secret(s) of %s for log redaction", len(secrets), kind.filename
            )

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
        data = kind.secrets.mask(document.data) if kind.secrets is not None else document.data
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
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
        if kind.secrets is not None:
            # Before anything could log it.
            self.redactor.register(kind.secrets.values(document.data))
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
            sync_directory(target.parent)
            self._prune_backups(kind)
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

    def _announce(self, kind: ConfigKind) -> None:
        # On the event loop: listeners schedule their work there.
        self.events.publish(ConfigChanged(kind.filename))

    # -- backups --------------------------------------------------------------------------

    async def list_files(self) -> ConfigResponse:
        """The files with their headers and backups.

        :raises ConfigListError: the configuration folder cannot be read.
        """
        return await run_blocking(self._list_files)

    def _list_files(self) -> ConfigResponse:
        try:
            return ConfigResponse(files=[self._describe(kind) for kind in self.kinds])
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
        problems = model_problems(HeaderDocument, document.data)
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
        kind = next((kind for kind in self.kinds if kind.filename == filename), None)
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
