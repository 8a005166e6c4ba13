"""An open data stream of the leased sensor device (created by ``ICOSystem``).

The stream buffer of icotronic is fed by the CAN notifier on the event loop; this
class takes what it holds in batches and turns them into arrays at once, and it
stops the stream in a way that is verified: after the device answered the stop
request, no more frames may arrive.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt
from icotronic.can.error import ErrorResponseError, NoResponseError
from icotronic.can.streaming.buffer import AsyncStreamBuffer

if TYPE_CHECKING:
    from icotronic.can.node.sensor import SensorNode
    from icotronic.can.streaming.data import StreamingData

logger = logging.getLogger(__name__)

# Attempts at the stop request before the stream counts as not stopped.
STOP_ATTEMPTS = 3
# Frames still in flight when the device answers arrive within this many seconds.
IN_FLIGHT_S = 0.05


@dataclass(frozen=True)
class RawFrames:
    """Frames as received: counters, epoch timestamps, raw ADC values."""

    counters: npt.NDArray[np.uint8]
    timestamps: npt.NDArray[np.float64]
    raw: npt.NDArray[np.uint16]

    def __len__(self) -> int:
        return len(self.counters)


NO_FRAMES = RawFrames(np.empty(0, np.uint8), np.empty(0, np.float64), np.empty((0, 3), np.uint16))
# Put into the stream buffer to end a waiting read (see DataStream.wake).
_WAKE = cast("tuple[StreamingData, int]", object())


@dataclass(frozen=True)
class StopReport:
    """What happened when the stream was stopped."""

    stopped: bool  # verified: no frame arrived after the device's last answer
    detail: str  # human-readable account ("" when stopped at the first attempt)
    # Frames kept arriving after the stop requests: the device still streams.
    streaming: bool = False


class DataStream:
    """Frames of the leased device, read in batches; stop with :meth:`stop`."""

    def __init__(
        self,
        sensor: SensorNode,
        buffer: AsyncStreamBuffer,
        lock: asyncio.Lock,
        frame_rate: float,
    ) -> None:
        self._sensor = sensor
        self._buffer = buffer
        self._lock = lock
        self._frame_rate = frame_rate
        self._listening = True

    async def read(self, max_frames: int) -> RawFrames:
        """Wait for the next frame and take what else is queued (``max_frames`` at
        most). No frames (at once) after :meth:`wake`.

        :raises StreamingTimeoutError: no frame within the stream timeout.
        :raises StreamingBufferError: more than a second of frames waited."""
        first = await anext(self._buffer)
        if first is _WAKE:
            return NO_FRAMES
        batch = [first]
        queue = self._buffer.queue
        while len(batch) < max_frames and not queue.empty():
            batch.append(queue.get_nowait())
        count = len(batch)
        counters = np.fromiter((item[0].counter for item in batch), np.uint8, count)
        stamps = np.fromiter((item[0].timestamp for item in batch), np.float64, count)
        raw = np.array([item[0].values for item in batch], dtype=np.uint16)
        return RawFrames(counters, stamps, raw)

    def wake(self) -> None:
        """Make a waiting (or the next) :meth:`read` return at once with no
        frames: a stop request must not wait for the stream timeout when the
        device stalls. Frames already queued are read as usual."""
        queue = self._buffer.queue
        if queue.empty():
            queue.put_nowait(_WAKE)

    def _drain(self) -> int:
        queue = self._buffer.queue
        count = 0
        while not queue.empty():
            if queue.get_nowait() is not _WAKE:
                count += 1
        return count

    async def stop(
        self, after_error: bool, timeout: float, attempts: int | None = None
    ) -> StopReport:
        """Ask the device to stop streaming and check that it did.

        After an error one short attempt only (the link is probably gone, and
        the library's retries would take about 10 s). Otherwise ``attempts``
        (:data:`STOP_ATTEMPTS`) requests, each followed by a quiet window in which
        no frame may arrive. May be called again if the stream did not stop."""
        if attempts is None:
            attempts = 1 if after_error else STOP_ATTEMPTS
        window = min(2.0, max(0.2, 3 / self._frame_rate)) if self._frame_rate > 0 else 0.2
        problems: list[str] = []
        streaming = False
        self._listen()
        try:
            async with self._lock, asyncio.timeout(timeout):
                for attempt in range(1, attempts + 1):
                    try:
                        await self._sensor.stop_streaming_data(retries=1 if after_error else 2)
                    except NoResponseError:
                        problems.append(f"attempt {attempt}: the device did not answer")
                    except ErrorResponseError as error:
                        problems.append(f"attempt {attempt}: the device answered with an error")
                        logger.warning("Stop request refused: %s", error)
                    except Exception as error:  # the bus itself failed
                        problems.append(f"attempt {attempt}: {type(error).__name__}: {error}")
                    await asyncio.sleep(IN_FLIGHT_S)
                    self._drain()
                    await asyncio.sleep(window)
                    arrived = self._drain()
                    streaming = arrived > 0
                    if arrived == 0:
                        return StopReport(True, "; ".join(problems))
                    problems.append(
                        f"attempt {attempt}: {arrived} frames arrived after the stop request"
                    )
        except TimeoutError:
            problems.append(f"stopping took longer than {timeout:g} s")
        finally:
            self.close()
        return StopReport(
            False,
            "the device did not stop streaming (" + "; ".join(problems) + ")",
            streaming,
        )

    def _listen(self) -> None:
        if not self._listening:
            self._listening = True
            self._drain()
            self._sensor.spu.notifier.add_listener(self._buffer)

    def close(self) -> None:
        """Stop listening (the device is not asked anything)."""
        if self._listening:
            self._listening = False
            self._buffer.stop()
            self._sensor.spu.notifier.remove_listener(self._buffer)
