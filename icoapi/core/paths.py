"""Folders of the service under its data directory."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from icoapi.core.settings import BUNDLED_CONFIG_DIR, Settings

logger = logging.getLogger(__name__)

# Files that hold credentials: readable by the service's user only (0600).
SECRET_CONFIG_FILES = ("dataspace.yaml",)


@dataclass(frozen=True)
class AppPaths:
    """Where the service keeps its data. Created by :meth:`ensure` at startup."""

    root: Path
    log_file: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> AppPaths:
        return cls(root=settings.data_dir, log_file=settings.log_file)

    @property
    def measurements(self) -> Path:
        return self.root / "measurements"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def config_backup(self) -> Path:
        return self.config / "backup"

    @property
    def logs(self) -> Path:
        return self.log_file.parent

    def ensure(self) -> None:
        for folder in (self.root, self.measurements, self.config, self.config_backup, self.logs):
            folder.mkdir(parents=True, exist_ok=True)

    def install_default_config(
        self, names: Iterable[str], source: Path = BUNDLED_CONFIG_DIR
    ) -> list[Path]:
        """Copy the shipped configuration files ``names`` that the user does not
        have yet (the configuration domain's table of kinds names them).

        A user's file is never overwritten. Returns the files that were copied."""
        copied = []
        for name in names:
            target = self.config / name
            origin = source / name
            if target.exists() or not origin.is_file():
                continue
            shutil.copyfile(origin, target)
            copied.append(target)
            logger.info("Installed default configuration file %s", target)
        self.protect_secret_files()
        return copied

    def protect_secret_files(self) -> None:
        """Make the credentials files (and their backups) 0600, also ones an older
        version or a manual copy left readable by others."""
        candidates = [self.config / name for name in SECRET_CONFIG_FILES]
        for name in SECRET_CONFIG_FILES:
            stem, dot, suffix = name.rpartition(".")
            candidates.extend(self.config_backup.glob(f"{stem}__*{dot}{suffix}"))
        for path in candidates:
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
                if mode & 0o077:
                    os.chmod(path, 0o600)
                    logger.info("Made %s private (mode %o → 600)", path, mode)
            except OSError as error:
                if path.exists():
                    logger.warning("Could not make %s private: %s", path, error)
