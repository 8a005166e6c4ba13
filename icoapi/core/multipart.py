"""Streaming multipart/form-data reception for file uploads.

FastAPI's ``UploadFile`` first spools the whole body into the system's temporary
folder and only then calls the route, so a size limit could only be checked
afterwards. Here the body is parsed while it arrives: the file parts of one form
field go straight to temporary files in the target directory (hidden names, same
volume), the limit is enforced per file while reading, and the file name is
checked as soon as the part headers are in, before any data is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from icoapi.core.tasks import run_blocking
from icoapi.core.uploads import (
    InvalidUploadError,
    ReceivedFile,
    UploadRules,
    UploadTooLargeError,
)

WRITE_BUFFER = 1024 * 1024
FORM_OVERHEAD = 1024 * 1024  # allowance for boundaries, headers and small fields


def missing_field(name: str) -> RequestValidationError:
    """FastAPI's own 422 body for a missing form field."""
    return RequestValidationError(
        [{"type": "missing", "loc": ("body", name), "msg": "Field required", "input": None}]
    )


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@dataclass
class _Part:
    filename: str
    content_type: str | None
    path: Path
    handle: IO[bytes] | None = None
    size: int = 0
    buffer: bytearray = field(default_factory=bytearray)


class _Events:
    """Collects the parser's callbacks; they are handled (with awaits) after each write."""

    def __init__(self, wanted: str) -> None:
        self.wanted = wanted.encode("latin-1")
        self.queue: list[tuple[str, Any]] = []
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._active = False

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._field = self._value = b""
        self._active = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        filename = options.get(b"filename")
        if options.get(b"name") != self.wanted or filename is None:
            return  # another field: its data is ignored
        self._active = True
        content_type = self._headers.get(b"content-type", b"").decode("latin-1").strip()
        self.queue.append(("begin", (_decode(filename), content_type or None)))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._active:
            self.queue.append(("data", data[start:end]))

    def _part_end(self) -> None:
        if self._active:
            self.queue.append(("end", None))
        self._active = False


async def receive_files(
    request: Request, field_name: str, rules: UploadRules
) -> list[ReceivedFile]:
    """Store the files of form field ``field_name`` in temporary files in
    ``rules.directory``. Bind the first two arguments to get a
    :data:`~icoapi.core.uploads.ReceiveFiles` for a service.

    The caller owns the returned files and must remove them.

    :raises RequestValidationError: (422) no such file field, or no multipart body.
    :raises UploadTooLargeError: (413) a file exceeds ``max_file_size``.
    :raises InvalidUploadError: (400) malformed body or too many files.
    Any error raised by ``rules.check_filename`` is passed on."""
    directory, max_file_size, max_files = rules.directory, rules.max_file_size, rules.max_files
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise missing_field(field_name)
    limit = max_files * max_file_size + FORM_OVERHEAD
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise UploadTooLargeError(_too_large(max_file_size))

    events = _Events(field_name)
    try:
        parser = MultipartParser(boundary, events.callbacks())  # type: ignore[arg-type]
    except (ValueError, MultipartParseError) as error:
        raise InvalidUploadError() from error
    received: list[ReceivedFile] = []
    current: _Part | None = None
    body_size = 0
    try:
        async for chunk in request.stream():
            body_size += len(chunk)
            if body_size > limit:
                raise UploadTooLargeError(_too_large(max_file_size))
            try:
                parser.write(chunk)
            except (ValueError, MultipartParseError) as error:
                raise InvalidUploadError() from error
            for kind, payload in events.queue:
                if kind == "begin":
                    if len(received) >= max_files:
                        raise InvalidUploadError(f"At most {max_files} file(s) per request.")
                    if rules.check_filename is not None:
                        rules.check_filename(payload[0])
                    path = directory / f".upload-{uuid.uuid4().hex}.part"
                    current = _Part(filename=payload[0], content_type=payload[1], path=path)
                    current.handle = await run_blocking(path.open, "xb")
                elif kind == "data" and current is not None:
                    current.size += len(payload)
                    if current.size > max_file_size:
                        raise UploadTooLargeError(_too_large(max_file_size))
                    current.buffer += payload
                    if len(current.buffer) >= WRITE_BUFFER:
                        await _write_buffer(current)
                elif kind == "end" and current is not None:
                    await _write_buffer(current)
                    await run_blocking(_close_handle, current)
                    received.append(
                        ReceivedFile(
                            path=current.path,
                            filename=current.filename,
                            content_type=current.content_type,
                            size=current.size,
                        )
                    )
                    current = None
            events.queue.clear()
        if current is not None:
            raise InvalidUploadError("The upload ended in the middle of a file.")
    except BaseException as error:
        leftovers = [upload.path for upload in received]
        if current is not None:
            await run_blocking(_close_handle, current)
            leftovers.append(current.path)
        for path in leftovers:
            await run_blocking(path.unlink, True)
        if isinstance(error, ClientDisconnect):
            raise InvalidUploadError("The client disconnected during the upload.") from error
        raise
    if not received:
        raise missing_field(field_name)
    return received


def _too_large(limit: int) -> str:
    return f"The uploaded file is larger than the limit of {limit} bytes."


async def _write_buffer(part: _Part) -> None:
    if part.buffer and part.handle is not None:
        data = bytes(part.buffer)
        part.buffer.clear()
        await run_blocking(part.handle.write, data)


def _close_handle(part: _Part) -> None:
    if part.handle is not None:
        part.handle.close()
        part.handle = None
