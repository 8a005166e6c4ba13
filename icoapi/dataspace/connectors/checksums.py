"""Checksums of measurement files as the dataspaces state them: an S3 ETag (the
MD5 of a single PUT, or ``md5(part md5s)-N`` for a multipart upload), or a
SHA-256 (folders, next to the file as ``<name>.sha256``).

A *scheme* names how a checksum was computed: ``0`` a plain MD5, a positive
number the multipart part size, :data:`SHA256` a SHA-256. The status cache keys
checksums by it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from icoapi.dataspace.connectors.base import PART_SIZE, Progress
from icoapi.dataspace.errors import DataspaceError

MAX_PARTS = 10_000
STREAM_BLOCK = 256 * 1024
SHA256 = -1


def part_size_for(size: int, part_size: int = PART_SIZE) -> int:
    """The part size used for a file of ``size`` bytes (at most MAX_PARTS parts)."""
    while size > part_size * MAX_PARTS:
        part_size *= 2
    return part_size


def etag_scheme(etag: str, size: int, part_size: int) -> int:
    """The scheme of an S3 ETag of a ``size``-byte file: 0 for a single-PUT MD5,
    else the multipart part size (ETags ``md5-N``)."""
    return part_size_for(size, part_size) if "-" in etag else 0


def file_checksum(path: Path, size: int, scheme: int) -> str:
    """The checksum of ``path`` in ``scheme``."""
    if scheme == SHA256:
        return file_sha256(path)
    return file_etag(path, size, scheme or max(size, 1))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(STREAM_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_etag(path: Path, size: int, part_size: int = PART_SIZE) -> str:
    """The ETag an S3 store gives ``path`` uploaded by this service: the MD5 for
    a single PUT, ``md5(part md5s)-N`` for a multipart upload."""
    part_size = part_size_for(size, part_size)
    digests: list[bytes] = []
    with open(path, "rb") as file:
        while True:
            part = hashlib.md5(usedforsecurity=False)
            remaining = part_size
            while remaining and (block := file.read(min(STREAM_BLOCK, remaining))):
                part.update(block)
                remaining -= len(block)
            if remaining == part_size and digests:
                break
            digests.append(part.digest())
            if remaining:
                break
    if size <= part_size:
        return digests[0].hex()
    return multipart_etag(digests)


def multipart_etag(digests: list[bytes]) -> str:
    combined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
    return f"{combined}-{len(digests)}"


def plain_etag(etag: str | None) -> str | None:
    return etag.strip().strip('"').lower() if etag else None


class HashingReader:
    """A file-like view of ``size`` bytes of a file that hashes what is read and
    reports progress; http.client streams it block by block."""

    def __init__(self, file: BinaryIO, size: int, progress: Progress) -> None:
        self.file = file
        self.remaining = size
        self.sent = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.progress = progress

    def read(self, amount: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        amount = self.remaining if amount < 0 else min(amount, self.remaining, STREAM_BLOCK)
        block = self.file.read(amount)
        if not block:
            # Shorter than announced: the file shrank during the upload.
            raise DataspaceError("The file became shorter during the upload.")
        self.remaining -= len(block)
        self.sent += len(block)
        self.md5.update(block)
        self.progress(self.sent)
        return block
