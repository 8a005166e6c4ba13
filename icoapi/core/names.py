"""The one check for names a client gives for a file inside one of our folders."""

from __future__ import annotations

# Separators and drive marks, also percent-encoded (a client or proxy may decode
# a name once more than expected).
_FORBIDDEN_PARTS = ("..", "/", "\\", ":", "\0", "%2f", "%5c", "%00")
MAX_NAME_LENGTH = 255


def is_plain_file_name(name: str) -> bool:
    """Whether ``name`` can only mean a file directly inside one folder: not
    empty, at most 255 characters, no path separator, drive or ``..`` (also
    percent-encoded), no control character, not hidden and without surrounding
    whitespace. Callers still resolve the path and check it stays inside."""
    lowered = name.lower()
    return not (
        not name
        or len(name) > MAX_NAME_LENGTH
        or name != name.strip()
        or name.startswith(".")
        or any(part in lowered for part in _FORBIDDEN_PARTS)
        or any(ord(character) < 32 or ord(character) == 127 for character in name)
    )
