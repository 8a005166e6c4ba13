"""Access tokens: a YAML file of SHA-256 hashes with a name and a role each.

The file never holds a token itself, only its hash, so reading the file (or a
backup of it) gives nobody access. Tokens are random (``icoapi_`` and 43
URL-safe characters, 256 bits), so a plain SHA-256 is enough: there is nothing
to guess that a slow hash would protect. A presented token is hashed once and
compared with every entry in constant time (:func:`hmac.compare_digest`, no early
exit), so the answer time does not tell how much of a hash matched.

Format::

    tokens:
      - name: line-3-display
        role: viewer
        sha256: 5b0c...   # 64 hex digits
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from icoapi.access.rules import Role

TOKEN_PREFIX = "icoapi_"
# What a token made by new_token() looks like; the log redactor hides these.
TOKEN_PATTERN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{16,}")
GRANTABLE_ROLES = {"metrics": Role.METRICS, "viewer": Role.VIEWER, "operator": Role.OPERATOR}
_HASH = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[\w.@-]{1,64}")


class TokenFileError(Exception):
    """The tokens file cannot be used; the message says where and why."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TokenEntry:
    name: str
    role: Role
    sha256: str


@dataclass(frozen=True)
class Identity:
    """Who made a request: the token's name (or why no token was needed) and role."""

    name: str
    role: Role


class TokenStore:
    """The known tokens. Empty means access control is off."""

    def __init__(self, entries: Iterable[TokenEntry] = ()) -> None:
        self.entries = tuple(entries)

    @property
    def enabled(self) -> bool:
        return bool(self.entries)

    def with_api_key(self, api_key: str | None) -> TokenStore:
        """This store plus ``ICOAPI_API_KEY`` as an operator token."""
        if not api_key:
            return self
        entry = TokenEntry("ICOAPI_API_KEY", Role.OPERATOR, token_hash(api_key))
        return TokenStore((*self.entries, entry))

    def identify(self, token: str) -> Identity | None:
        """The identity of a presented token, or ``None`` if it is not known."""
        presented = token_hash(token).encode()
        found: TokenEntry | None = None
        for entry in self.entries:
            # No early exit: every entry is compared.
            if hmac.compare_digest(presented, entry.sha256.encode()) and found is None:
                found = entry
        return None if found is None else Identity(found.name, found.role)


def _parse(data: object, source: Path) -> list[TokenEntry]:
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("tokens", []), list):
        raise TokenFileError(f"{source}: expected a mapping with a list 'tokens'")
    entries: list[TokenEntry] = []
    for index, item in enumerate(data.get("tokens") or []):
        where = f"{source}: tokens[{index}]"
        if not isinstance(item, dict):
            raise TokenFileError(f"{where}: expected a mapping with name, role and sha256")
        name, role, digest = item.get("name"), item.get("role"), item.get("sha256")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise TokenFileError(f"{where}: 'name' must be 1-64 letters, digits or ._@-")
        if role not in GRANTABLE_ROLES:
            raise TokenFileError(f"{where}: 'role' must be one of {', '.join(GRANTABLE_ROLES)}")
        if not isinstance(digest, str) or not _HASH.fullmatch(digest.lower()):
            raise TokenFileError(f"{where}: 'sha256' must be 64 hex digits (a token's hash)")
        if any(entry.name == name for entry in entries):
            raise TokenFileError(f"{where}: the name '{name}' is used twice")
        entries.append(TokenEntry(name, GRANTABLE_ROLES[role], digest.lower()))
    return entries


def load_tokens(path: Path) -> TokenStore:
    """Read the tokens file; a missing file means no tokens."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return TokenStore()
    except (OSError, UnicodeDecodeError) as error:
        raise TokenFileError(f"{path}: cannot be read ({error})") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TokenFileError(f"{path}: not valid YAML ({error})") from error
    return TokenStore(_parse(data, path))


def save_tokens(path: Path, entries: Iterable[TokenEntry]) -> None:
    """Write the tokens file atomically, readable by its owner only (0600)."""
    data = {
        "tokens": [
            {"name": entry.name, "role": entry.role.label, "sha256": entry.sha256}
            for entry in entries
        ]
    }
    text = (
        "# icoapi access tokens: only SHA-256 hashes, never the tokens themselves.\n"
        "# Manage with: python -m icoapi.access --help\n" + yaml.safe_dump(data, sort_keys=False)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:  # mkstemp: mode 0600
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add_token(path: Path, name: str, role: str) -> str:
    """Create a token, store its hash under ``name`` and return the token."""
    if role not in GRANTABLE_ROLES:
        raise TokenFileError(f"role must be one of {', '.join(GRANTABLE_ROLES)}")
    entries = list(load_tokens(path).entries)
    if any(entry.name == name for entry in entries):
        raise TokenFileError(f"{path}: a token named '{name}' exists; remove it first")
    token = new_token()
    entry = TokenEntry(name, GRANTABLE_ROLES[role], token_hash(token))
    _parse({"tokens": [{"name": name, "role": role, "sha256": entry.sha256}]}, path)
    save_tokens(path, [*entries, entry])
    return token


def remove_token(path: Path, name: str) -> bool:
    """Revoke the token ``name``. The last one takes the file with it: the
    service refuses to start with a tokens file that holds no token."""
    entries = list(load_tokens(path).entries)
    kept = [entry for entry in entries if entry.name != name]
    if len(kept) == len(entries):
        return False
    if kept:
        save_tokens(path, kept)
    else:
        path.unlink()
    return True
