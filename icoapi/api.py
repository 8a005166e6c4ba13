"""The application factory and the ``icoapi`` entry point.

``create_app(settings)`` wires the domain routers and one lifespan that builds
every service, stores it on ``app.state`` and tears it down again. Importing
this module has no side effects: ``icoapi.api:app`` is created on first access,
so ``uvicorn icoapi.api:app`` gets the same setup as ``icoapi``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from icoapi import __version__
from icoapi.access.protection import (
    GUARD_RESPONSES,
    add_protection,
    load_access_tokens,
    log_access_control,
    uvicorn_options,
)
from icoapi.access.tokens import TokenFileError, TokenStore
from icoapi.configuration.kinds import METADATA, SENSORS
from icoapi.configuration.router import config_router
from icoapi.configuration.service import ConfigService
from icoapi.core.errors import IcoapiError, shorten_validation_errors
from icoapi.core.events import EventBus
from icoapi.core.logging import setup_logging
from icoapi.core.paths import AppPaths
from icoapi.core.routes import documented_methods
from icoapi.core.settings import Settings, SettingsError, env_file_used, load_settings
from icoapi.core.systemd import SystemdAgent, SystemdNotifier, watchdog_interval
from icoapi.core.tasks import TaskRegistry, run_blocking
from icoapi.dataspace.config import DATASPACE
from icoapi.dataspace.router import router as dataspace_router
from icoapi.dataspace.service import DataspaceService
from icoapi.files.router import router as files_router
from icoapi.files.service import MeasurementFileService
from icoapi.hdf5.recovery import recover_interrupted
from icoapi.hdf5.validation import FileVerdicts
from icoapi.logs.router import router as logs_router
from icoapi.logs.service import LogService
from icoapi.measurement.router import router as measurement_router
from icoapi.measurement.service import MeasurementService
from icoapi.metrics.http import RequestTiming, app_templates
from icoapi.metrics.router import add_metrics_route
from icoapi.metrics.service import Metrics
from icoapi.metrics.sources import MetricSources
from icoapi.sensors.router import router as sensors_router
from icoapi.sensors.service import SensorCatalog
from icoapi.state.router import router as state_router
from icoapi.state.service import StateService
from icoapi.system.link import CanLinkConfig
from icoapi.system.router import general_router, sth_router, stu_router
from icoapi.system.service import ICOSystem
from icoapi.system.timeouts import HardwareTimeouts

logger = logging.getLogger(__name__)

# The configuration files: each domain defines the kind of its file.
CONFIG_KINDS = (METADATA, SENSORS, DATASPACE)
CONFIG_FILE_NAMES = tuple(kind.filename for kind in CONFIG_KINDS)

TAGS = [
    {"name": "General", "description": "System state, health and the CAN link."},
    {
        "name": "Stationary Transceiver Unit (STU)",
        "description": "The STU on the CAN bus that talks to sensor devices over Bluetooth.",
    },
    {
        "name": "Sensory Tool Holder (STH)",
        "description": "Sensor devices: scan, connect, rename, ADC settings, battery.",
    },
    {"name": "Measurement", "description": "Start and stop measurements; live data stream."},
    {
        "name": "File Handling",
        "description": "Measurement files (HDF5): list, download, "
        "analyze, metadata and embedded files.",
    },
    {"name": "Sensor", "description": "Sensor definitions and channel configurations."},
    {"name": "Configuration", "description": "Configuration files, uploads and backups."},
    {"name": "Logs", "description": "Service log files and a live log stream."},
    {
        "name": "Dataspace",
        "description": "Upload measurement files to Trident or an S3 store; the upload queue.",
    },
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    paths = AppPaths.from_settings(settings)
    paths.ensure()
    redactor, fanout = setup_logging(settings, paths.log_file)
    tokens: TokenStore = app.state.tokens
    if settings.ICOAPI_API_KEY is not None:
        redactor.register([settings.ICOAPI_API_KEY.get_secret_value()])
    log_access_control(settings, tokens)
    env_file = env_file_used(settings)
    logger.info(
        "Starting icoapi %s (settings from %s, data in %s)",
        __version__,
        env_file or "environment and defaults",
        paths.root,
    )
    paths.install_default_config(CONFIG_FILE_NAMES)
    # Measurement files a killed process left behind are completed from their journals.
    await run_blocking(recover_interrupted, paths.measurements)

    events = EventBus()
    tasks = TaskRegistry()
    system = ICOSystem(
        CanLinkConfig.from_settings(settings, getattr(app.state, "can_bus_options", None)),
        events,
        HardwareTimeouts.from_settings(settings),
    )
    sensors = SensorCatalog(paths.config / "sensors.yaml")
    events.subscribe(sensors.on_config_changed)
    measurement = MeasurementService(
        system=system,
        sensors=sensors,
        paths=paths,
        settings=settings,
        events=events,
        tasks=tasks,
    )
    # One cache of the hostile-file check's verdicts for every reader of the files.
    verdicts = FileVerdicts()
    dataspace = DataspaceService(
        paths, events, tasks, getattr(app.state, "dataspace_options", None), verdicts=verdicts
    )
    state = StateService(
        system,
        measurement.status,
        paths,
        events,
        dataspace.cloud_state,
        access_control=tokens.enabled,
    )

    app.state.loop = asyncio.get_running_loop()
    app.state.paths = paths
    app.state.events = events
    app.state.tasks = tasks
    app.state.system = system
    app.state.sensors = sensors
    app.state.measurement = measurement
    app.state.state = state
    app.state.configs = ConfigService(paths, CONFIG_KINDS, redactor, events)
    app.state.logs = LogService(paths, settings, fanout)
    app.state.dataspace = dataspace
    app.state.files = MeasurementFileService(
        paths.measurements,
        measurement.files_in_use,
        max_upload_size=settings.ICOAPI_MAX_UPLOAD_BYTES,
        cloud_status=dataspace.file_statuses,
        analyze_points=settings.ICOAPI_ANALYZE_POINTS,
        verdicts=verdicts,
    )

    metrics: Metrics = app.state.metrics
    metrics.http.templates.load()
    metrics.attach(
        MetricSources(system, measurement, state, dataspace, paths.measurements, settings)
    )
    systemd = SystemdAgent(
        app.state.systemd,
        lambda: activity(measurement, dataspace),
        events,
        watchdog_interval(),
    )

    await dataspace.start()
    if not await system.open():
        logger.warning(
            "Running without CAN link (%s). Hardware endpoints answer 503 until "
            "PUT %s/reset-can succeeds.",
            system.link_error,
            settings.api_prefix,
        )
    host = settings.VITE_API_HOSTNAME
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    logger.info(
        "icoapi ready: API under %s, documentation at http://%s:%d/docs",
        settings.api_prefix,
        shown,
        settings.VITE_API_PORT,
    )
    systemd.start()
    try:
        yield
    finally:
        logger.info("Shutting down icoapi")
        await systemd.stop()
        metrics.detach()
        await measurement.shutdown()
        await dataspace.close()
        await system.close()
        await state.close()
        await tasks.cancel_all()
        app.state.systemd.close()
        logger.info("icoapi stopped")


def activity(measurement: MeasurementService, dataspace: DataspaceService) -> str:
    """What the service does, in a few words (systemd's STATUS line)."""
    status = measurement.status()
    if status.running:
        return f"measuring {status.name}"
    if status.post_meta_pending is not None:
        return f"waiting for post-measurement metadata of {status.name}"
    uploading = dataspace.cloud_state().uploading
    if uploading is not None:
        return f"uploading {uploading.name}"
    return "idle"


async def _icoapi_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, IcoapiError)
    return JSONResponse({"detail": error.detail}, status_code=error.status_code)


async def _http_error(request: Request, error: Exception) -> Response:
    # Starlette's 405 names the methods of the first route whose path matched;
    # the answer names every method the OpenAPI document has for the path.
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 405:
        allowed = documented_methods(request.app.openapi(), request.url.path)
        if allowed:
            error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, error)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    # FastAPI's 422 body, but never echoing a large input back (once per field).
    assert isinstance(error, RequestValidationError)
    errors = shorten_validation_errors(error.errors())
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def create_app(settings: Settings | None = None, **state: Any) -> FastAPI:
    """Build the application. Extra keyword arguments are put on ``app.state``
    before startup (tests pass e.g. ``can_bus_options``, further ``can.Bus`` arguments)."""
    settings = settings or load_settings()
    app = FastAPI(
        title="ICOapi",
        version=__version__,
        summary="REST and WebSocket API of the ICOtronic wireless sensor system.",
        description=(
            "Controls the STU and its sensor devices over CAN, records measurements "
            "to HDF5, streams live data and manages sensor, configuration, measurement "
            "and log files."
        ),
        openapi_tags=TAGS,
        lifespan=lifespan,
        responses=GUARD_RESPONSES,
    )
    app.state.settings = settings
    app.state.tokens = load_access_tokens(settings)
    app.state.metrics = Metrics(lambda: app_templates(app))
    app.state.systemd = SystemdNotifier.from_environment()
    for key, value in state.items():
        setattr(app.state, key, value)
    add_protection(app, settings, app.state.tokens)
    # Outermost: the guard's refusals are timed too.
    app.add_middleware(RequestTiming, metrics=app.state.metrics.http)
    app.add_exception_handler(IcoapiError, _icoapi_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    prefix = settings.api_prefix
    for router in (
        stu_router,
        sth_router,
        general_router,
        state_router,
        files_router,
        measurement_router,
        logs_router,
        sensors_router,
        config_router(CONFIG_KINDS),
        dataspace_router,
    ):
        app.include_router(router, prefix=prefix)
    add_metrics_route(app)  # at the root, the Prometheus convention
    return app


def __getattr__(name: str) -> Any:
    # ``uvicorn icoapi.api:app`` looks the attribute up; build the app only then.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)


def main() -> None:
    """Console entry point: load settings, then serve with uvicorn."""
    try:
        settings = load_settings()
        app = create_app(settings)
    except (SettingsError, TokenFileError) as error:
        print(f"icoapi: {error}", file=sys.stderr)  # noqa: T201 - logging is not set up yet
        raise SystemExit(2) from error
    config = uvicorn.Config(
        app,
        host=settings.VITE_API_HOSTNAME,
        port=settings.VITE_API_PORT,
        log_config=None,
        ws_ping_interval=20,
        ws_per_message_deflate=settings.WEBSOCKET_COMPRESSION,
        **uvicorn_options(settings),
    )
    MeasurementFirstServer(config, app).run()


class MeasurementFirstServer(uvicorn.Server):
    """uvicorn's server, but on shutdown (SIGTERM, Ctrl-C) a running measurement
    ends first, so its stream clients get every sample the file gets (then the
    final loss and a normal close) before uvicorn closes the connections."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:  # listening: systemd may start what depends on it
            self.app.state.systemd.notify("READY=1")

    async def shutdown(self, sockets: Any = None) -> None:
        self.app.state.systemd.stopping()
        measurement = getattr(self.app.state, "measurement", None)
        if measurement is not None:
            await measurement.shutdown()
        await super().shutdown(sockets)


if __name__ == "__main__":
    main()
