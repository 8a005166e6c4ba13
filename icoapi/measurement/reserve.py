"""The disk reserve (``ICOAPI_DISK_RESERVE_BYTES``): free space no measurement takes.

A start is refused (507) when the free space, less the estimated size of a
timed measurement, is below the reserve; a running measurement is stopped
cleanly (``stopped: disk reserve reached``) when the free space falls below it,
checked once a second. Estimates use the uncompressed data rate
(:func:`icoapi.hdf5.layout.data_bytes_per_second`): an upper bound of the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from icoapi.core.disk import free_bytes
from icoapi.core.tasks import run_blocking
from icoapi.hdf5.layout import data_bytes_per_second
from icoapi.measurement.errors import DiskReserveError
from icoapi.measurement.runner import MeasurementRun
from icoapi.measurement.schemas import MeasurementInstructions

logger = logging.getLogger(__name__)

# Seconds between checks of the free space while a measurement runs.
CHECK_INTERVAL = 1.0
# Seconds of data the journal may take besides the file (see hdf5.checkpoint).
JOURNAL_SECONDS = 15.0
REACHED = "disk reserve reached"
MIB = 1024 * 1024


def mib(size: float) -> str:
    return f"{size / MIB:.1f} MiB"


def check_start_reserve(
    folder: Path, reserve: int, channels: Sequence[str], instructions: MeasurementInstructions
) -> None:
    """Refuse a start that would leave less than ``reserve`` bytes free (blocking).

    :raises DiskReserveError: naming the free space, the reserve and, for a
        timed measurement, the estimated file size."""
    free = free_bytes(folder)
    if free is None:
        return  # unknown here: the running check stops the measurement if need be
    estimate = None
    if instructions.time is not None and instructions.adc is not None:
        rate = data_bytes_per_second(channels, instructions.adc.with_defaults().sample_rate)
        estimate = rate * (instructions.time + JOURNAL_SECONDS)
    if free - (estimate or 0) >= reserve:
        return
    size = (
        f"; the file of this {instructions.time} s measurement is estimated at "
        f"{mib(estimate)} (uncompressed data rate, with its journal)"
        if estimate is not None
        else ""
    )
    detail = (
        f"Not enough free disk space to start a measurement: {mib(free)} free on the "
        f"measurement volume, {mib(reserve)} must stay free (ICOAPI_DISK_RESERVE_BYTES)"
        f"{size}. Delete measurement files (upload them first), or lower the reserve."
    )
    logger.warning("Measurement start refused: %s", detail)
    raise DiskReserveError(detail)


async def watch_reserve(
    run: MeasurementRun, folder: Path, reserve: int, reached: Callable[[str], None]
) -> None:
    """Stop ``run`` cleanly once free space falls below ``reserve``; ``reached``
    gets the reason with the figures (for ``last_error``)."""
    while not run.stop_requested.is_set():
        free = await run_blocking(free_bytes, folder)
        if free is not None and free < reserve:
            logger.warning(
                "Measurement %s stops: free disk space %s fell below the reserve of %s "
                "(ICOAPI_DISK_RESERVE_BYTES); everything received stays in %s",
                run.plan.name,
                mib(free),
                mib(reserve),
                run.plan.path.name,
            )
            run.request_stop(REACHED)
            reached(
                f"stopped: {REACHED} ({mib(free)} free, reserve {mib(reserve)}, "
                "ICOAPI_DISK_RESERVE_BYTES)"
            )
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CHECK_INTERVAL):
                await run.stop_requested.wait()
