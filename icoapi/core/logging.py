"""Logging: console, rotating file, JSON lines, secret redaction and a live fan-out.

:func:`setup_logging` may be called any number of times (tests create the app
repeatedly): it replaces the handlers it installed before instead of adding more.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import sys
import threading
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote, quote_plus

from icoapi.core.settings import Settings

TEXT_FORMAT = "%(asctime)s [%(levelname)s] [%(name)s] %(message)s"
_MARKER = "_icoapi_handler"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:  # set (and cleaned) by the redactor
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ColorFormatter(logging.Formatter):
    """Text format with the level name coloured for terminals."""

    COLORS: ClassVar[dict[str, str]] = {
        "DEBUG": "\033[36m",
        "INFO": "\033[32m",
        "WARNING": "\033[33m",
        "ERROR": "\033[31m",
        "CRITICAL": "\033[1;31m",
    }

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        color = self.COLORS.get(record.levelname)
        if color is None:
            return text
        tag = f"[{record.levelname}]"
        return text.replace(tag, f"{color}{tag}\033[0m", 1)


def secret_forms(secret: str) -> set[str]:
    """The ways a secret can appear in a log line: as is, percent-encoded (as in
    a logged query string, any hex case, ``+`` or ``%20`` for spaces), JSON- or
    repr-escaped, and Base64 (standard and URL-safe, with or without padding)."""
    forms = {secret}
    for encoded in (quote(secret, safe=""), quote(secret, safe="/"), quote_plus(secret)):
        forms.add(encoded)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda match: match[0].lower(), encoded))
    forms.add(json.dumps(secret)[1:-1])
    forms.add(repr(secret)[1:-1])
    raw = secret.encode()
    for encoded_bytes in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded_bytes.decode()
        forms.update({text, text.rstrip("=")})
    return {form for form in forms if len(form) >= 3}


def _percent_encoded(char: str) -> str:
    # The UTF-8 bytes of ``char`` percent-encoded once or more often (``%2F``,
    # ``%252F``, …), hex digits in either case.
    return "".join(
        "%(?:25)*" + "".join(f"[{digit}{digit.lower()}]" for digit in f"{byte:02X}")
        for byte in char.encode("utf-8")
    )


def encoded_secret_pattern(secret: str) -> re.Pattern[str]:
    """Matches ``secret`` with any of its characters percent-encoded, once or
    several times over (a query string inside a query string), ``+`` for a
    space included: the forms :func:`secret_forms` cannot list."""
    parts = []
    for char in secret:
        options = [re.escape(char), _percent_encoded(char)]
        if char == " ":  # "+", also once encoded itself
            options.extend((r"\+", "%(?:25)*2[bB]"))
        parts.append(f"(?:{'|'.join(options)})")
    return re.compile("".join(parts))


# Credentials by shape, whatever their value: query parameters, headers and the
# WebSocket subprotocol that carry tokens, and tokens made by ``icoapi.access``.
_CREDENTIAL_NAMES = r"(?:api_key|access_token|token|password|passwd|secret)"
CREDENTIAL_PATTERNS = (
    # In a query string the value ends at "&"; in a percent-encoded one (once or
    # more often) at "%26" ("%2526", …).
    re.compile(rf"(?i)({_CREDENTIAL_NAMES}=)([^&\s\"'#;,]+)"),
    re.compile(rf"(?i)({_CREDENTIAL_NAMES}%(?:25)*3D)((?:(?!%(?:25)*26)[^&\s\"'#;,])+)"),
    re.compile(
        r"(?i)((?:authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)([^\s\"',;]+)"
    ),
    re.compile(r"(?i)(icoapi\.bearer\.)([^\s\"',;]+)"),
    re.compile(r"(icoapi_)([A-Za-z0-9_-]{16,})"),
)


def redact_credentials(
    text: str, secrets: Iterable[str] = (), encoded: Iterable[re.Pattern[str]] = ()
) -> str:
    """``text`` with registered secrets (their listed forms, then any percent-
    encoding of them) and credential-shaped values replaced by ``***``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    if "%" in text:
        for pattern in encoded:
            text = pattern.sub("***", text)
    for pattern in CREDENTIAL_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class SecretRedactor(logging.Filter):
    """Replaces secrets (passwords, tokens) in every record by ``***``: the
    registered ones in every encoding (:func:`secret_forms`) and any value in a
    credential position (:data:`CREDENTIAL_PATTERNS`), in the message and in a
    logged traceback.

    Attached to every handler, so a secret cannot reach a file, the console or a
    log-stream client even if some library (uvicorn's access log) logs it."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._encoded: dict[str, re.Pattern[str]] = {}
        self._lock = threading.Lock()

    def register(self, secrets: Iterable[str | None]) -> None:
        with self._lock:
            forms = set(self._secrets)
            encoded = dict(self._encoded)
            for secret in secrets:
                if secret and len(secret) >= 3:
                    forms |= secret_forms(secret)
                    encoded.setdefault(secret, encoded_secret_pattern(secret))
            # Longest first: a secret's encoded form may contain a shorter form.
            self._secrets = tuple(sorted(forms, key=len, reverse=True))
            self._encoded = encoded

    def redact(self, text: str) -> str:
        return redact_credentials(text, self._secrets, tuple(self._encoded.values()))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class LogFanout(logging.Handler):
    """Hands each formatted log line to live subscribers (the ``/logs/stream`` sockets).

    Each subscriber has a bounded buffer: a reader that falls behind loses the
    oldest lines (and is told how many), and memory never grows without bound.
    Records may come from any thread; subscribers are woken on their own loop."""

    def __init__(self, buffer_lines: int = 1000) -> None:
        super().__init__()
        self.buffer_lines = buffer_lines
        self._subscribers: set[LogSubscription] = set()
        self._subscribers_lock = threading.Lock()

    def subscribe(self) -> LogSubscription:
        subscription = LogSubscription(self, asyncio.get_running_loop(), self.buffer_lines)
        with self._subscribers_lock:
            self._subscribers.add(subscription)
        return subscription

    def _unsubscribe(self, subscription: LogSubscription) -> None:
        with self._subscribers_lock:
            self._subscribers.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def emit(self, record: logging.LogRecord) -> None:
        if not self._subscribers:
            return
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with self._subscribers_lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription.push(line)


class LogSubscription:
    """One reader of the live log: ``await next_lines()`` returns new lines."""

    def __init__(self, fanout: LogFanout, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self._fanout = fanout
        self._loop = loop
        self._lines: deque[str] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._event = asyncio.Event()
        self.dropped = 0

    def push(self, line: str) -> None:
        with self._lock:
            if len(self._lines) == self._lines.maxlen:
                self.dropped += 1
            self._lines.append(line)
        try:
            self._loop.call_soon_threadsafe(self._event.set)
        except RuntimeError:  # loop closed: the reader is gone
            self._fanout._unsubscribe(self)

    async def next_lines(self) -> list[str]:
        await self._event.wait()
        with self._lock:
            self._event.clear()
            lines = list(self._lines)
            self._lines.clear()
        return lines

    def close(self) -> None:
        self._fanout._unsubscribe(self)


class BoundedRotatingFileHandler(RotatingFileHandler):
    """Rotates the log file at ``maxBytes`` and keeps ``backupCount`` old ones, so
    the logs take at most ``maxBytes * (backupCount + 1)`` bytes (plus one line).

    With ``backupCount`` 0 the file starts over when full: the standard handler
    would never roll over then, and the file would grow without bound."""

    def doRollover(self) -> None:
        if self.backupCount > 0:
            super().doRollover()
            return
        if self.stream:
            self.stream.close()
        self.stream = open(self.baseFilename, "w", encoding=self.encoding)  # noqa: SIM115


def log_size_limit(max_bytes: int, backup_count: int) -> int:
    """The most disk the log files take (one line more at most)."""
    return max_bytes * (backup_count + 1)


def _text_formatter(color: bool = False) -> logging.Formatter:
    return ColorFormatter(TEXT_FORMAT) if color else logging.Formatter(TEXT_FORMAT)


def setup_logging(
    settings: Settings, log_file: Path, redactor: SecretRedactor | None = None
) -> tuple[SecretRedactor, LogFanout]:
    """Install console, file and live handlers on the root logger (idempotent)."""
    redactor = redactor or SecretRedactor()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARKER, False):
            root.removeHandler(handler)
            handler.close()

    file_formatter = JsonFormatter() if settings.LOG_USE_JSON else _text_formatter()
    console_formatter = (
        JsonFormatter()
        if settings.LOG_USE_JSON
        else _text_formatter(settings.LOG_USE_COLOR and sys.stdout.isatty())
    )

    log_file.parent.mkdir(parents=True, exist_ok=True)
    file_handler = BoundedRotatingFileHandler(
        log_file,
        maxBytes=settings.LOG_MAX_BYTES,
        backupCount=settings.LOG_BACKUP_COUNT,
        encoding="utf-8",
    )
    file_handler.setFormatter(file_formatter)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(console_formatter)
    fanout = LogFanout()
    fanout.setFormatter(file_formatter)

    for handler in (file_handler, console, fanout):
        setattr(handler, _MARKER, True)
        handler.addFilter(redactor)
        root.addHandler(handler)
    root.setLevel(settings.LOG_LEVEL)

    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(settings.LOG_LEVEL_UVICORN)
    # Chatty libraries: icotronic logs every CAN request at INFO, which would
    # drown the service's own lines. Their details show with LOG_LEVEL=DEBUG.
    library_level = logging.INFO if root.level <= logging.DEBUG else logging.WARNING
    for name in ("can", "icotronic", "multipart", "asyncio", "websockets"):
        logging.getLogger(name).setLevel(library_level)
    logging.getLogger(__name__).info(
        "Logging to %s: rotated at %d bytes, %d old files kept, at most %d bytes in total",
        log_file,
        settings.LOG_MAX_BYTES,
        settings.LOG_BACKUP_COUNT,
        log_size_limit(settings.LOG_MAX_BYTES, settings.LOG_BACKUP_COUNT),
    )
    return redactor, fanout
