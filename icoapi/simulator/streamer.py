"""The thread that streams measurement frames of one sensor device.

Frames are paced by a clock rather than by a sleep per frame: every few
milliseconds (or at every Bluetooth burst, see :mod:`~icoapi.simulator.delivery`)
the thread sends all frames that are due by monotonic time, so a late wake-up
is caught up automatically and the long-term rate is exact. Frame ``k`` carries
counter ``k % 256`` and is sampled at ``t0 + k / frame_rate`` (epoch seconds);
its timestamp is when it reaches the host, which is never earlier. The values
of a whole batch are computed with numpy at once to keep the per-frame Python
work to building and sending the message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from can import Message

from .delivery import Delivery
from .faults import Faults
from .protocol import STREAM_DATA_ID, StreamFormat
from .signals import RawArray, Signal

log = logging.getLogger(__name__)

MAX_BATCH = 256
"""Most frames sent while holding the send lock (keeps answer latency low)."""
TICK = 0.004
"""Pacing period in seconds without Bluetooth bursts."""
MAX_GAPS = 100_000
"""Gaps a stream remembers for :meth:`Streamer.lost_between` (oldest forgotten)."""


class StreamHost(Protocol):
    """What a stream needs from the simulator that owns the bus."""

    faults: Faults

    def send_batch(self, messages: Sequence[Message]) -> None:
        """Send frames in order (under the simulator's send lock)."""

    def send_error_frame(self) -> None:
        """Report a CAN bus error to the host (a damaged, repeated frame)."""

    def bus_off(self) -> None:
        """The host's CAN adapter goes bus-off."""

    def host_listening(self) -> bool:
        """A host adapter takes frames (none is while bus-off: the STU's frames
        go unacknowledged and are lost)."""


class StreamSource(Protocol):
    """What a stream needs from the device that samples."""

    name: str

    @property
    def reference_voltage(self) -> float:
        """ADC reference voltage in V."""

    @property
    def reachable(self) -> bool:
        """The device is in radio range and powered."""

    def sample_rate(self) -> float:
        """ADC sample rate in Hz."""

    def signal_for_channel(self, channel: int) -> Signal | None:
        """The signal measurement channel ``channel`` carries."""


class Streamer:
    """Streams the frames of one ``open_data_stream`` of a sensor device.

    Args:
        device: The streaming device (its ADC configuration, sensor
            configuration and signals are read for every batch).
        stream_format: The format byte of the start request.
        host: The simulator (send function, faults).
        rate_multiplier: Speed-up factor for the frame rate.
        seed: Seeds the noise, the random frame drops and the burst jitter.
        on_link_lost: Called (from the streaming thread) when the Bluetooth
            link drops during the stream.
    """

    def __init__(
        self,
        device: StreamSource,
        stream_format: int,
        host: StreamHost,
        rate_multiplier: float,
        seed: np.random.SeedSequence,
        on_link_lost: Callable[[], None],
    ) -> None:
        decoded = StreamFormat.decode(stream_format)
        self.device = device
        self.format_byte = stream_format
        self.channels = decoded.enabled
        self.sets = decoded.sets
        self.values_per_frame = len(self.channels) * self.sets
        if not 1 <= self.values_per_frame <= 3 or decoded.wide:
            raise ValueError(f"Unsupported streaming format 0x{stream_format:02X}")
        self.dlc = 2 + 2 * self.values_per_frame
        self.nominal_frame_rate = device.sample_rate() / self.values_per_frame
        self.frame_rate = self.nominal_frame_rate * rate_multiplier
        """Frames per second actually sent (nominal rate × multiplier)."""
        self.host = host
        self._faults = host.faults
        self._on_link_lost = on_link_lost
        noise_seed, drop_seed, delivery_seed = seed.spawn(3)
        self._noise_rng = np.random.default_rng(noise_seed)
        self._drop_rng = np.random.default_rng(drop_seed)
        self.delivery = Delivery(host.faults, self.dlc, np.random.default_rng(delivery_seed))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"icosim-stream-{device.name}", daemon=True
        )
        self.started_monotonic = 0.0
        self.started_wall = 0.0
        self.frames_generated = 0
        """Frames produced so far (sent or dropped)."""
        self.frames_sent = 0
        self.frames_dropped = 0
        """Frames lost by the ``drop_rate``/``drop_next``/``stall`` faults or a full
        STU queue (``delivery.frames_overflowed`` of them)."""
        self._last_sent = -1
        self._gaps: deque[tuple[int, int]] = deque(maxlen=MAX_GAPS)
        """(sent frames before the gap, frames lost in it), oldest first."""
        self.cpu_time = 0.0
        """CPU seconds the streaming thread used (valid after it ended)."""

    # -- Control -----------------------------------------------------------------

    def start(self) -> None:
        """Start sending frames (frame 0 is due immediately)."""
        self.started_monotonic = time.monotonic()
        self.started_wall = time.time()
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop streaming; safe to call repeatedly and from the thread itself."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def lost_between(self, first: int, last: int) -> int:
        """Frames lost between the sent frames number ``first`` and ``last``
        (counted from 0 in sending order): the loss a receiver of exactly those
        frames must report. Exact while the stream had at most
        :data:`MAX_GAPS` gaps since frame ``first``."""
        return sum(lost for before, lost in list(self._gaps) if first < before <= last)

    @property
    def running(self) -> bool:
        """Tell whether the streaming thread still runs."""
        return self._thread.is_alive() and not self._stop.is_set()

    # -- Thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:  # a dying stream must not kill the simulator silently
            log.exception("Streaming thread of %s failed", self.device.name)
        finally:
            self.cpu_time = time.thread_time()

    def _loop(self) -> None:
        rate = self.frame_rate
        start = self.started_monotonic
        faults = self._faults
        next_frame = 0
        next_event: float | None = None  # of the Bluetooth bursts, in stream seconds
        next_error = self._next_error(0.0)
        bus_off_sent = False
        while not self._stop.is_set():
            elapsed = time.monotonic() - start
            loss_after = faults.link_loss_after
            if (loss_after is not None and elapsed >= loss_after) or not self.device.reachable:
                self._stop.set()
                self._on_link_lost()
                return
            bus_off_after = faults.bus_off_after
            if not bus_off_sent and bus_off_after is not None and elapsed >= bus_off_after:
                bus_off_sent = True
                self.host.bus_off()
            if next_error is not None and elapsed >= next_error:
                self.host.send_error_frame()
                next_error = self._next_error(elapsed)
            if faults.burst_interval > 0:
                next_frame, next_event = self._send_bursts(next_frame, next_event, elapsed)
                wait = next_event - (time.monotonic() - start)
            else:
                next_event = None
                due = int(elapsed * rate) + 1  # frames 0..due-1 are due by now
                self._send(next_frame, due, None)
                next_frame = max(next_frame, due)
                # One tick, or until the next frame is due at low rates.
                wait = max(TICK, next_frame / rate - (time.monotonic() - start))
            # The stop event wakes us at once.
            self._stop.wait(min(max(wait, 0.0), 0.05))

    def _send(self, first: int, end: int, arrival: float | None) -> None:
        """Send frames ``first..end-1`` in batches (``arrival``: see :meth:`_emit`)."""
        while first < end and not self._stop.is_set():
            count = min(end - first, MAX_BATCH)
            self._emit(first, count, arrival)
            first += count

    def _send_bursts(
        self, next_frame: int, next_event: float | None, elapsed: float
    ) -> tuple[int, float]:
        """Send the frames of every Bluetooth connection event up to ``elapsed``
        (stream seconds): each event carries the frames sampled since the one
        before. The events follow their own schedule, so a late wake-up of this
        thread sends several events' frames, each with its own arrival time.
        Returns the next frame and the time of the next event."""
        if next_event is None:  # bursts just switched on
            next_event = elapsed + (self.delivery.next_burst() or 0.0)
        while next_event <= elapsed and not self._stop.is_set():
            due = int(next_event * self.frame_rate) + 1  # sampled by this event
            self._send(next_frame, due, self.started_wall + next_event)
            next_frame = max(next_frame, due)
            next_event += self.delivery.next_burst() or TICK
        return next_frame, next_event

    def _next_error(self, elapsed: float) -> float | None:
        """Stream time of the next error frame (exponentially distributed gaps)."""
        frequency = self._faults.error_frame_rate
        if frequency <= 0:
            return None
        return elapsed + float(self._drop_rng.exponential(1 / frequency))

    def _values(self, first: int, count: int) -> RawArray:
        """Raw values of frames ``first..first+count-1``, shape (count, values)."""
        device = self.device
        reference_voltage = device.reference_voltage
        sets = self.sets
        per_channel_rate = self.frame_rate * sets
        # Sample s of a channel (counted from stream start) is taken at
        # s / per_channel_rate; a frame holds `sets` samples of every channel.
        sample_index = np.arange(first * sets, (first + count) * sets, dtype=np.float64)
        times = sample_index / per_channel_rate
        columns = []
        for channel in self.channels:
            signal = device.signal_for_channel(channel)
            if signal is None:
                columns.append(np.zeros(times.shape, dtype=np.uint16))
            else:
                columns.append(signal.raw(times, reference_voltage, self._noise_rng))
        # (samples, channels) → (frames, sets * channels), set-major like the
        # hardware: all channels of set 0, then set 1, ...
        return np.stack(columns, axis=1).reshape(count, sets * len(self.channels))

    def _emit(self, first: int, count: int, arrival: float | None) -> None:
        faults = self._faults
        keep = np.ones(count, dtype=bool)
        burst = faults.take_burst(count)
        if burst:
            keep[:burst] = False
        drop_rate = faults.drop_rate
        if drop_rate > 0.0:
            keep &= self._drop_rng.random(count) >= drop_rate
        if faults.stall or faults.stu_silent or not self.host.host_listening():
            keep[:] = False
        self.frames_generated += count
        if arrival is None:  # each frame reaches the STU at its sample time
            spacing = 1 / self.frame_rate
            timestamps = self.delivery.paced(self.started_wall + first * spacing, spacing, keep)
        else:
            timestamps = self.delivery.timestamps(np.full(count, arrival), keep)
        kept = len(timestamps)
        self.frames_dropped += count - kept
        if kept == 0:
            return

        frames = np.empty((count, self.dlc), dtype=np.uint8)
        frames[:, 0] = self.format_byte
        frames[:, 1] = np.arange(first, first + count) & 0xFF
        frames[:, 2:] = self._values(first, count).astype("<u2").view(np.uint8)
        blob = frames.tobytes()
        dlc = self.dlc
        if kept == count and first == self._last_sent + 1:  # no gap: the usual case
            indices: list[int] = list(range(count))
        else:
            kept_indices = np.flatnonzero(keep)
            steps = np.diff(kept_indices + first, prepend=self._last_sent) - 1
            for position in np.flatnonzero(steps).tolist():
                self._gaps.append((self.frames_sent + position, int(steps[position])))
            indices = kept_indices.tolist()
        self._last_sent = first + indices[-1]
        messages = [
            Message(
                timestamp=timestamp,
                arbitration_id=STREAM_DATA_ID,
                is_extended_id=True,
                dlc=dlc,
                data=blob[index * dlc : (index + 1) * dlc],
            )
            for index, timestamp in zip(indices, timestamps, strict=True)
        ]
        self.host.send_batch(messages)
        self.frames_sent += kept
