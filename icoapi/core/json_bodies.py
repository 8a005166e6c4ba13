"""Strict JSON request bodies: what RFC 8259 does not allow is refused with 422.

Python's JSON parser (which FastAPI uses) accepts ``NaN``, ``Infinity`` and
``-Infinity``, turns numbers beyond the float range (``1e400``) into infinity and
keeps a lone UTF-16 surrogate escape (``"\\ud83d"``) as a character no UTF-8
encoder takes. None of these is JSON, none can be stored in a file, a log line or
a response, and each made some route fail with 500 somewhere later. So every
JSON body is checked once, before any route sees it, and refused with FastAPI's
own ``json_invalid`` error shape.

The check costs one regular-expression scan of the body; only a body that holds
one of the suspicious spellings (or a base64 picture that happens to) is parsed
strictly as well. The body is bounded by :mod:`icoapi.core.limits` (outside this
middleware), so buffering it here adds no new memory bound.
"""

from __future__ import annotations

import json
import logging
import math
import re
from email.message import Message as EmailMessage
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from icoapi.core.asgi import send_error

logger = logging.getLogger(__name__)

# Spellings that may hide a value JSON does not allow: the named constants, an
# exponent of three digits or more, a digit run long enough to leave the float
# range, and the escape of a UTF-16 surrogate (paired ones are fine).
SUSPICIOUS = re.compile(rb"NaN|Infinity|[0-9.][eE][+-]?[0-9]{3}|[0-9]{300}|\\u[dD][89a-fA-F]")


# Requests whose body a route may read. Others pass untouched: their body is never
# parsed, and a streaming GET keeps its receive channel for the disconnect.
METHODS_WITH_BODIES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotJsonError(ValueError):
    """A body that Python's parser takes but that is not JSON."""


def _constant(name: str) -> Any:
    raise NotJsonError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 40 else f"{text[:40]}…"
        raise NotJsonError(f"the number {shown} is out of range")
    return value


_STRICT = json.JSONDecoder(parse_constant=_constant, parse_float=_finite_float)


def _check_strings(value: Any) -> None:
    """Raise :class:`NotJsonError` for a string (or key) with a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        surrogate = text[error.start]
        raise NotJsonError(
            f"a string holds the lone surrogate \\u{ord(surrogate):04x} (not a character)"
        ) from error


def check_json(body: bytes) -> None:
    """Raise :class:`NotJsonError` if ``body`` parses only with Python's
    extensions (non-finite numbers, lone surrogates). Malformed JSON passes: the
    route's own parser reports it as before."""
    if not SUSPICIOUS.search(body):
        return
    try:
        value = _STRICT.decode(body.decode("utf-8-sig"))
    except NotJsonError:
        raise
    except ValueError:  # malformed, or not UTF-8: the route's parser says so
        return
    except RecursionError:
        return
    _check_strings(value)


def is_json_request(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether FastAPI would parse this request's body as JSON: no content type,
    or ``application/json`` or ``application/*+json``."""
    content_type = None
    for name, value in headers:
        if name == b"content-type":
            content_type = value.decode("latin-1")
            break
    if content_type is None:
        return True
    message = EmailMessage()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class StrictJsonBodies:
    """Refuses JSON bodies with values JSON does not have (422, ``json_invalid``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in METHODS_WITH_BODIES
            or not is_json_request(scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left (or the body limit cut it off and answered)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            check_json(body)
        except NotJsonError as error:
            logger.info("Refused %s %s: %s", scope["method"], scope["path"], error)
            await _send_invalid(send, str(error))
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_invalid(send: Send, reason: str) -> None:
    # FastAPI's own answer for a body that is not JSON, with the reason.
    detail: list[dict[str, Any]] = [
        {
            "type": "json_invalid",
            "loc": ["body"],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": reason},
        }
    ]
    await send_error(send, 422, detail)
