"""HTTP layer of the measurement domain."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from icoapi.core.errors import error_responses
from icoapi.core.websocket import receive_until_disconnect
from icoapi.hdf5.metadata import MetadataTooLargeError
from icoapi.measurement.deps import MeasurementDep
from icoapi.measurement.errors import (
    DiskReserveError,
    IncorrectStateError,
    InvalidInstructionsError,
    MeasurementStopTimeoutError,
    PostMetaPendingError,
)
from icoapi.measurement.schemas import (
    ControlResponse,
    MeasurementInstructions,
    MeasurementOverview,
    Metadata,
)
from icoapi.system.errors import (
    CanLinkUnavailableError,
    CanNoResponseError,
    UnsupportedFeatureError,
)

router = APIRouter(prefix="/measurement", tags=["Measurement"])


@router.post(
    "/start",
    response_model=ControlResponse,
    responses=error_responses(
        IncorrectStateError,
        PostMetaPendingError,
        UnsupportedFeatureError,
        InvalidInstructionsError,
        MetadataTooLargeError,
        CanNoResponseError,
        CanLinkUnavailableError,
        DiskReserveError,
    ),
)
async def start_measurement(
    measurement: MeasurementDep, instructions: MeasurementInstructions
) -> ControlResponse:
    """Configure the connected sensor device and start recording. The device named
    by ``mac_address`` must be the connected one. 507 when the free disk space, less
    the estimated file size of a timed measurement, is below the reserve
    (``ICOAPI_DISK_RESERVE_BYTES``); a running measurement stops cleanly when the
    free space falls below it."""
    status = await measurement.start(instructions)
    return ControlResponse(message="Measurement started successfully.", data=status)


@router.post("/stop", response_model=None, responses=error_responses(MeasurementStopTimeoutError))
async def stop_measurement(measurement: MeasurementDep) -> None:
    """Stop the running measurement. Returns when the stream has ended and every
    received sample is in the file (``null`` at once if nothing runs). A finished
    measurement that waits for post-measurement metadata is finished without it."""
    await measurement.stop()


@router.post("/post_meta", response_model=None, responses=error_responses(MetadataTooLargeError))
async def post_measurement_metadata(measurement: MeasurementDep, metadata: Metadata) -> None:
    """Metadata for the measurement that waits for it (``wait_for_post_meta``);
    at most 8 MiB of JSON (413 above)."""
    measurement.post_meta(metadata)


@router.get("", response_model=MeasurementOverview)
async def measurement_status(measurement: MeasurementDep) -> MeasurementOverview:
    """The current measurement (all fields null when none runs). Its metadata is
    summarised (version, profile, parameter names) as in the ``/state`` pushes:
    the values, pictures included, are in the file."""
    return MeasurementOverview.of(measurement.status())


@router.websocket("/stream")
async def measurement_stream(websocket: WebSocket, measurement: MeasurementDep) -> None:
    """Live converted samples of the next or running measurement, as JSON arrays of
    ``{timestamp, first, second, third, ift, counter, dataloss}``."""
    await websocket.accept()
    client = measurement.stream_clients.add(websocket)
    try:
        await receive_until_disconnect(websocket)
    finally:
        measurement.stream_clients.remove(client)
        client.close_after_pending()
