"""Valid configuration documents for the tests, built from the shipped files."""

from __future__ import annotations

from typing import Any

import yaml

from icoapi.core.settings import BUNDLED_CONFIG_DIR


def shipped(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((BUNDLED_CONFIG_DIR / name).read_text("utf-8"))
    return data


def dump(document: Any) -> bytes:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode("utf-8")


def with_header(document: dict[str, Any], **header: str) -> dict[str, Any]:
    return {**document, "info": {**document["info"], **header}}


def enabled_dataspace(password: str) -> dict[str, Any]:
    document = shipped("dataspace.yaml")
    document["connection"] = {
        "enabled": True,
        "connector": "trident",
        "protocol": "https",
        "domain": "dataspace.example.org",
        "base_path": "api",
        "username": "operator",
        "password": password,
        "bucket": "measurements",
        "manage_assets_path": "assets",
        "virtual_group_root": None,
    }
    return with_header(document, config_name="Enabled Dataspace")
