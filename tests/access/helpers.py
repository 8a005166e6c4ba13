"""Tokens files for the access tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from icoapi.access.tokens import add_token
from icoapi.core.settings import Settings
from tests.support import make_settings


def settings_with_tokens(tmp_path: Path, **overrides: Any) -> tuple[Settings, dict[str, str]]:
    """Settings with a tokens file holding a viewer and an operator token; no
    trusted networks unless overridden, and no CAN link (hardware routes answer
    503 at once instead of waiting for a silent bus)."""
    tokens_file = tmp_path / "tokens.yaml"
    tokens = {
        role: add_token(tokens_file, f"{role}-token", role) for role in ("viewer", "operator")
    }
    values: dict[str, Any] = {
        "ICOAPI_TOKENS_FILE": tokens_file,
        "ICOAPI_TRUSTED_NETWORKS": "",
        "CAN_INTERFACE": "socketcan",
        "CAN_CHANNEL": "nocan-access",
    }
    values.update(overrides)
    return make_settings(tmp_path / "data", **values), tokens
