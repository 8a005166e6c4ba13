"""Log files rotate and stay within LOG_MAX_BYTES * (LOG_BACKUP_COUNT + 1)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from icoapi.core.logging import BoundedRotatingFileHandler, log_size_limit

LINE = "x" * 99  # 100 bytes with the newline


def write_lines(path: Path, max_bytes: int, backups: int, lines: int) -> list[Path]:
    handler = BoundedRotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        for number in range(lines):
            handler.emit(logging.makeLogRecord({"msg": f"{number:09d}{LINE[9:]}"}))
    finally:
        handler.close()
    return sorted(path.parent.glob(f"{path.name}*"))


@pytest.mark.parametrize("backups", [0, 1, 3])
def test_logs_stay_within_their_total_limit(tmp_path: Path, backups: int) -> None:
    max_bytes = 2048
    files = write_lines(tmp_path / "icodaq.log", max_bytes, backups, lines=1000)  # 100 kB
    assert len(files) == backups + 1
    total = sum(path.stat().st_size for path in files)
    assert total <= log_size_limit(max_bytes, backups)
    assert all(path.stat().st_size <= max_bytes for path in files)
    # The newest lines are kept.
    newest = (tmp_path / "icodaq.log").read_text("utf-8").splitlines()
    assert newest[-1].startswith("000000999")
