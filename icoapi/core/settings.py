"""Service settings, read from the environment and an optional ``.env`` file.

Every variable MyTooliT ICOapi 0.2.1 reads keeps its name (``VITE_API_*``, ``LOG_*``,
``WEBSOCKET_UPDATE_RATE``) so existing deployments keep working. The CAN link uses
the names python-can itself reads (``CAN_INTERFACE``, ``CAN_CHANNEL``, ``CAN_BITRATE``).

Precedence, highest first: real environment variables, then the first ``.env`` file
found by :func:`find_env_file`, then the defaults below. Unlike MyTooliT ICOapi 0.2.1
(which loads ``./.env`` with override), a ``.env`` file never overrides a variable
that is set in the environment.
"""

from __future__ import annotations

import logging
import os
import sys
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal

from platformdirs import user_data_dir
from pydantic import (
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]

DEFAULT_APPLICATION_FOLDER = "ICOdaq"
# The repository's top-level config/ folder holds the shipped defaults.
BUNDLED_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
BUNDLED_ENV_FILE = BUNDLED_CONFIG_DIR / "default.env"


def _default_can_interface() -> str:
    # icotronic's own per-OS defaults: SocketCAN on Linux, PEAK's driver elsewhere.
    return "socketcan" if sys.platform == "linux" else "pcan"


def _default_can_channel() -> str:
    return "can0" if sys.platform == "linux" else "PCAN_USBBUS1"


def _loopback_networks() -> list[IPv4Network | IPv6Network]:
    return [IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")]


class SettingsError(Exception):
    """Raised when a setting has an invalid value; the message names the variable."""


class Settings(BaseSettings):
    """All settings of the service. Field names are the environment variable names."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        extra="ignore",
        env_file_encoding="utf-8",
        validate_default=True,
    )

    _env_file_used: Path | None = PrivateAttr(None)

    # --- HTTP server ----------------------------------------------------------------
    VITE_API_HOSTNAME: str = Field("0.0.0.0", description="Address uvicorn binds to.")
    VITE_API_PORT: int = Field(33215, ge=1, le=65535, description="TCP port of the API.")
    VITE_API_VERSION: str = Field(
        "v1", description="API version path segment: routes live under /api/<version>."
    )
    VITE_API_ORIGINS: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173"],
        description="Comma-separated CORS origins allowed to call the API from a browser.",
    )
    ICOAPI_API_KEY: SecretStr | None = Field(
        None,
        description="An operator token (besides the tokens file); setting it turns "
        "access control on. Sent as X-API-Key, Authorization: Bearer or ?api_key=.",
    )
    ICOAPI_TRUSTED_NETWORKS: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=_loopback_networks,
        description="Comma-separated networks whose clients need no token (they act as "
        "operator). Empty: every client needs a token once access control is on.",
    )
    ICOAPI_TOKENS_FILE: Path | None = Field(
        None,
        description="YAML file with the access tokens (SHA-256 hashes and roles). "
        "Default: <data dir>/tokens.yaml. Manage it with 'python -m icoapi.access'.",
    )
    ICOAPI_ALLOWED_HOSTS: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated host names (Host header) the service answers to, "
        "besides IP addresses, localhost and this machine's own name. '*' allows any "
        "name (turns the DNS-rebinding protection off).",
    )
    ICOAPI_TRUSTED_PROXIES: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto headers are believed. Empty: forwarded headers are ignored.",
    )
    ICOAPI_MAX_BODY_BYTES: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="Largest request body in bytes for every route except file uploads.",
    )
    ICOAPI_MAX_UPLOAD_BYTES: int = Field(
        2 * 1024 * 1024 * 1024,
        ge=1024 * 1024,
        description="Largest request body in bytes for measurement-file uploads "
        "(POST /files/analyze and embedded files).",
    )
    WEBSOCKET_UPDATE_RATE: float = Field(
        60.0, gt=0, le=1000, description="Live-stream messages per second and client."
    )

    WEBSOCKET_COMPRESSION: bool = Field(
        False,
        description="Offer permessage-deflate on WebSockets: less bandwidth for the "
        "live stream, but several percent of a CPU core per client.",
    )

    # --- Connection limits (request hardening) -------------------------------------
    ICOAPI_MAX_CONNECTIONS: int = Field(
        512,
        ge=1,
        le=100_000,
        description="Open client connections at most (HTTP and WebSocket); beyond it the "
        "connection waiting longest for request headers is closed. Lowered to leave a "
        "quarter of the process's file-descriptor limit to the rest of the service.",
    )
    ICOAPI_HEADER_TIMEOUT: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a connection may take to send its request headers.",
    )

    # --- Data and logs --------------------------------------------------------------
    VITE_APPLICATION_FOLDER: str = Field(
        DEFAULT_APPLICATION_FOLDER,
        min_length=1,
        description="Name of the folder under the user data directory that holds "
        "measurements, configuration and logs.",
    )
    ICOAPI_DATA_DIR: Path | None = Field(
        None, description="Use this folder instead of the platform's user data directory."
    )
    LOG_LEVEL: LogLevel = "INFO"
    LOG_LEVEL_UVICORN: LogLevel = "INFO"
    LOG_USE_JSON: bool = False
    LOG_USE_COLOR: bool = False
    LOG_MAX_BYTES: int = Field(5 * 1024 * 1024, ge=1024)
    LOG_BACKUP_COUNT: int = Field(10, ge=0, le=1000)
    LOG_NAME_WITHOUT_EXTENSION: str = Field("icodaq", min_length=1, pattern=r"^[\w.-]+$")
    LOG_PATH: Path | None = Field(
        None,
        description="Log file path. An existing directory (or a path ending in a "
        "separator) means '<dir>/<LOG_NAME_WITHOUT_EXTENSION>.log'. "
        "Default: <data dir>/logs/<name>.log.",
    )

    # --- CAN link -------------------------------------------------------------------
    CAN_INTERFACE: str = Field(
        default_factory=_default_can_interface,
        min_length=1,
        description="python-can interface (socketcan, pcan, socketcand, virtual, ...) or "
        "'simulator' for the built-in device simulator.",
    )
    CAN_CHANNEL: str = Field(default_factory=_default_can_channel, min_length=1)
    CAN_BITRATE: int = Field(1_000_000, gt=0)
    CAN_HOST: str = Field("127.0.0.1", description="socketcand host.")
    CAN_PORT: int = Field(29536, ge=1, le=65535, description="socketcand TCP port.")
    CAN_REQUEST_TIMEOUT: float = Field(
        30.0, gt=0, description="Upper bound in seconds for one hardware operation."
    )
    CAN_REQUEST_ATTEMPTS: int = Field(
        10,
        ge=1,
        le=10,
        description="How often a CAN request is sent before the device counts as not "
        "answering (0.6 to 1.5 s per attempt; 10, the icotronic library's own number, "
        "is about 10.5 s).",
    )
    CAN_DEVICE_SEARCH_TIMEOUT: float = Field(
        10.0,
        gt=0,
        le=20,
        description="Seconds a connect looks for a sensor device before it answers 404. "
        "Other hardware requests wait meanwhile; at most the library's own 20 s.",
    )
    CAN_STREAM_TIMEOUT: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Seconds without a data frame before a running measurement counts as "
        "broken (device out of range or switched off); the file keeps everything received.",
    )

    # --- CAN bus-off recovery (simulator and hardware-control area) -----------------
    CAN_BUS_OFF_RESET: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="Seconds a bus-off CAN controller may stay so before the service "
        "reopens the link itself (as PUT /reset-can does; not during a measurement); "
        "0: only PUT /reset-can or the controller's own restart.",
    )

    # --- Measurement ----------------------------------------------------------------
    POST_META_TIMEOUT: float = Field(
        600.0, gt=0, description="Seconds to wait for post-measurement metadata."
    )

    # --- Dataspace ------------------------------------------------------------------
    ICOAPI_UPLOAD_WAIT_SECONDS: float = Field(
        30.0,
        ge=0,
        le=600,
        description="Seconds POST /cloud/upload and /cloud/update wait for their job "
        "before answering 202 (0: at once).",
    )

    # --- Measurement files: the analyze stream ------------------------------------
    ICOAPI_ANALYZE_POINTS: int = Field(
        200_000,
        ge=1000,
        le=10_000_000,
        description="Values per channel up to which GET /files/analyze/{name} sends "
        "every row; longer files are sent as a min/max envelope of at most this many.",
    )

    # --- Measurement storage (disk reserve, journal checkpoints) ---------------------
    ICOAPI_DISK_RESERVE_BYTES: int = Field(
        256 * 1024 * 1024,
        ge=0,
        description="Free space kept on the measurement volume: a start that would go "
        "below it gets 507, a running measurement stops cleanly when it is reached.",
    )
    ICOAPI_JOURNAL_CHECKPOINT_SECONDS: float = Field(
        5.0,
        ge=0.2,
        le=10.0,
        description="Seconds between journal checkpoints while a measurement is written "
        "(the journal holds at most this plus one table chunk of rows).",
    )

    @field_validator(
        "VITE_API_ORIGINS",
        "ICOAPI_TRUSTED_NETWORKS",
        "ICOAPI_ALLOWED_HOSTS",
        "ICOAPI_TRUSTED_PROXIES",
        mode="before",
    )
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("VITE_API_VERSION")
    @classmethod
    def _normalize_version(cls, value: str) -> str:
        value = value.strip().strip("/")
        if not value:
            raise ValueError("must not be empty")
        # MyTooliT ICOapi 0.2.1 documents both "1" and "v1"; the web client uses "v1".
        return value if value.startswith("v") else f"v{value}"

    @field_validator("VITE_API_ORIGINS")
    @classmethod
    def _no_wildcard_with_credentials(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError(
                "'*' is not allowed: the API allows credentials, so list the exact origins"
            )
        return value

    @property
    def api_prefix(self) -> str:
        return f"/api/{self.VITE_API_VERSION}"

    @property
    def data_dir(self) -> Path:
        if self.ICOAPI_DATA_DIR is not None:
            return self.ICOAPI_DATA_DIR.expanduser()
        return Path(user_data_dir(self.VITE_APPLICATION_FOLDER, appauthor=False))

    @property
    def tokens_file(self) -> Path:
        if self.ICOAPI_TOKENS_FILE is not None:
            return self.ICOAPI_TOKENS_FILE.expanduser()
        return self.data_dir / "tokens.yaml"

    @property
    def log_file(self) -> Path:
        name = f"{self.LOG_NAME_WITHOUT_EXTENSION}.log"
        if self.LOG_PATH is None:
            return self.data_dir / "logs" / name
        raw = str(self.LOG_PATH)
        path = self.LOG_PATH.expanduser()
        if raw.endswith(("/", os.sep)) or path.is_dir():
            return path / name
        return path


def find_env_file(cwd: Path | None = None, environ: dict[str, str] | None = None) -> Path | None:
    """Return the ``.env`` file to read: ``./config/.env``, then ``<user data dir>/.env``,
    then the bundled ``config/default.env``. ``None`` if none exists."""
    environ = dict(os.environ) if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    if "ICOAPI_DATA_DIR" in environ:
        data_dir = Path(environ["ICOAPI_DATA_DIR"]).expanduser()
    else:
        folder = environ.get("VITE_APPLICATION_FOLDER") or DEFAULT_APPLICATION_FOLDER
        data_dir = Path(user_data_dir(folder, appauthor=False))
    for candidate in (cwd / "config" / ".env", data_dir / ".env", BUNDLED_ENV_FILE):
        if candidate.is_file():
            return candidate
    return None


def format_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        name = ".".join(str(loc) for loc in item["loc"]) or "settings"
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        parts.append(f"{name}: {item['msg']}{shown}")
    return "Invalid setting " + "; ".join(parts)


def load_settings(env_file: Path | Literal["auto"] | None = "auto", **overrides: Any) -> Settings:
    """Read the settings; raise :class:`SettingsError` naming each invalid variable."""
    chosen = find_env_file() if env_file == "auto" else env_file
    logger = logging.getLogger(__name__)
    if chosen is None:
        logger.info("No .env file found; using environment variables and defaults")
    try:
        settings = Settings(_env_file=chosen, **overrides)  # type: ignore[call-arg]
    except ValidationError as error:
        raise SettingsError(format_validation_error(error)) from error
    settings._env_file_used = chosen
    return settings


def env_file_used(settings: Settings) -> Path | None:
    """The ``.env`` file these settings were read from, if any."""
    return settings._env_file_used
