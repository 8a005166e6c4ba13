"""The service's error tree. Services raise these; one handler renders them as
``{"detail": ...}`` with the error's HTTP status. No FastAPI import is needed to
raise them, so services stay free of HTTP concerns.

Where MyTooliT ICOapi 0.2.1 has the same error, the ``detail`` text is its text
word for word, so clients that show or compare details keep working."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar


class IcoapiError(Exception):
    """Base of every error the API reports to clients."""

    status_code: ClassVar[int] = 500
    default_detail: ClassVar[str] = "Internal error."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail if detail is not None else self.default_detail
        super().__init__(self.detail)


class BadRequestError(IcoapiError):
    status_code = 400
    default_detail = "Bad request."


class UnauthorizedError(IcoapiError):
    """Raised by nothing; documents the request guard's answer (icoapi.access.guard)."""

    status_code = 401
    default_detail = "Missing token."


class ForbiddenError(IcoapiError):
    """Documents the request guard's answer for a role that may not, or a cross-site page."""

    status_code = 403
    default_detail = "Not allowed for this token's role, or a cross-site request."


class BodyTooLargeError(IcoapiError):
    """Documents the body-size limit's answer (icoapi.core.limits)."""

    status_code = 413
    default_detail = "Request body too large."


class NotFoundError(IcoapiError):
    status_code = 404
    default_detail = "Not found."


class ConflictError(IcoapiError):
    status_code = 409
    default_detail = "The resource is in use."


class UnprocessableError(IcoapiError):
    status_code = 422
    default_detail = "Invalid input."


class ServiceUnavailableError(IcoapiError):
    status_code = 503
    default_detail = "Service unavailable."


class IncorrectStateError(BadRequestError):
    """The operation is not allowed in the current ICOtronic system state."""

    default_detail = "Incorrect request for current ICOtronic system state."


# FastAPI's request validation answers 422 with a list of these.
VALIDATION_ERROR_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "type": {"type": "string"},
        "input": {},
        "ctx": {"type": "object"},
    },
    "required": ["loc", "msg", "type"],
}


def detail_schema(status_code: int) -> dict[str, Any]:
    """``{"detail": ...}``: a message, or for 422 also the validation error list."""
    detail: dict[str, Any] = {"type": "string"}
    if status_code == 422:
        detail = {"anyOf": [detail, {"type": "array", "items": VALIDATION_ERROR_ITEM}]}
    return {"type": "object", "properties": {"detail": detail}, "required": ["detail"]}


def error_responses(*errors: type[IcoapiError]) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses=`` entries for the given errors (one per status)."""
    responses: dict[int | str, dict[str, object]] = {}
    for error in errors:
        entry = responses.setdefault(
            error.status_code,
            {
                "description": error.default_detail,
                "content": {
                    "application/json": {
                        "schema": detail_schema(error.status_code),
                        "examples": {},
                    }
                },
            },
        )
        examples = entry["content"]["application/json"]["examples"]  # type: ignore[index]
        examples[error.__name__] = {"value": {"detail": error.default_detail}}
        if error.default_detail not in str(entry["description"]):
            entry["description"] = f"{entry['description']} / {error.default_detail}"
    return responses


# Longest ``input`` echoed in a validation error, in characters of its JSON form.
MAX_ECHOED_INPUT = 200


def shorten_input(value: Any, limit: int = MAX_ECHOED_INPUT) -> Any:
    """``value`` itself if its JSON form is short, else the start of that form.
    Encodes lazily, so a huge body is never serialised whole. What a JSON
    response cannot hold (NaN, infinities, lone surrogates) is shown as text."""
    if isinstance(value, str):
        text = value if len(value) <= limit else f"{value[:limit]}… ({len(value)} characters)"
        return _encodable_text(text)
    if isinstance(value, bytes | bytearray):
        return shorten_input(bytes(value).decode("utf-8", "replace"), limit)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    pieces: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(default=str).iterencode(value):
        pieces.append(chunk)
        size += len(chunk)
        if size > limit:
            return _encodable_text("".join(pieces)[:limit] + "… (truncated)")
    return _json_safe(value)


def _encodable_text(text: str) -> str:
    # A lone surrogate cannot be encoded as UTF-8: show its escape instead.
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _json_safe(value: Any) -> Any:
    """``value`` (small) with non-finite numbers and unencodable text as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return _encodable_text(value)
    if isinstance(value, dict):
        return {_json_safe(key): _json_safe(child) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(child) for child in value]
    return value


def shorten_validation_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's validation error list with every ``input`` and ``ctx`` value short."""
    shortened = []
    for error in errors:
        item = dict(error)
        if "input" in item:
            item["input"] = shorten_input(item["input"])
        if isinstance(item.get("ctx"), dict):
            item["ctx"] = {key: shorten_input(value) for key, value in item["ctx"].items()}
        shortened.append(item)
    return shortened
