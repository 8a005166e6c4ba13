"""An uploaded configuration file's payload: its declared media type and its
size, checked before it is parsed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from icoapi.configuration.errors import ConfigTooLargeError, UnsupportedConfigMediaError

UPLOAD_CHUNK_BYTES = 64 * 1024
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
