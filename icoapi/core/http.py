"""HTTP helpers shared by the routers."""

from __future__ import annotations

import re
from urllib.parse import quote


def content_disposition(filename: str, ascii_name: str | None = None) -> str:
    """``attachment`` with an ASCII ``filename`` fallback and the exact name as
    RFC 5987 ``filename*``, so any UTF-8 name fits in the (Latin-1) header.

    The fallback is ``ascii_name`` (a caller's transliteration) or the name
    itself, with every character outside printable ASCII and ``" \\ ;`` replaced
    by ``_``; a fallback without a letter or digit before the suffix becomes
    ``download.<suffix>``."""
    source = filename if ascii_name is None else ascii_name
    fallback = re.sub(r'[^\x20-\x7e]|["\\;]', "_", source).strip()
    stem, dot, suffix = fallback.rpartition(".")
    if not re.search(r"[A-Za-z0-9]", stem if dot else fallback):
        fallback = f"download.{suffix}" if dot and suffix else "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
