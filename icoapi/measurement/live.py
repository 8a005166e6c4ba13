"""The live measurement stream: converted samples to ``/measurement/stream`` clients.

Samples are collected as they arrive and sent at most ``update_rate`` times a
second. Each message is a JSON array holding *every* sample since the previous
message, encoded once and offered to all clients (see :mod:`icoapi.core.websocket`
for how slow clients are handled). With no client connected nothing is encoded.

This module is the one place that knows the stream's wire format: sample entries,
data-loss entries, the IFT entry and error objects.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from icoapi.core.websocket import ClientGroup
from icoapi.hdf5.layout import CHANNELS as CHANNEL_NAMES
from icoapi.measurement.frames import FrameBatch
from icoapi.measurement.layout import ChannelLayout

# A message that waits longer than this many seconds of data for its clients
# is dropped instead of growing without bound (the encoder fell behind).
MAX_PENDING_ENTRIES = 200_000


def _number(value: float) -> str:
    # 7 significant digits: the resolution of float32, which is what the file holds.
    return f"{value:.7g}"


class LiveStream:
    """Batches stream entries and publishes them to a group of WebSocket clients."""

    def __init__(self, clients: ClientGroup, update_rate: float, layout: ChannelLayout) -> None:
        self.clients = clients
        self.layout = layout
        self.interval = 1.0 / update_rate
        self._pending: list[str] = []
        self._pending_entries = 0
        self._last_sent = time.monotonic()

    @property
    def active(self) -> bool:
        return len(self.clients) > 0

    def add_batch(self, batch: FrameBatch) -> None:
        """Queue every sample of a batch, each with its own timestamp."""
        if not self.active:
            return
        channels = self.layout.channels
        if self.layout.single:
            # Three samples of one channel per frame.
            per_frame = self.layout.samples_per_frame
            self.add_samples(
                channels,
                batch.sample_times.reshape(-1),
                batch.values.reshape(-1, 1),
                np.repeat(batch.counters, per_frame),
            )
        else:
            self.add_samples(channels, batch.frame_times, batch.values, batch.counters)

    def add_samples(
        self,
        channels: tuple[str, ...],
        timestamps: np.ndarray[Any, Any],
        values: np.ndarray[Any, Any],
        counters: np.ndarray[Any, Any],
    ) -> None:
        """Queue samples: ``timestamps`` (n,) seconds, ``values`` (n, len(channels))
        physical values, ``counters`` (n,) frame counters."""
        if not self.active:
            return
        if self._pending_entries > MAX_PENDING_ENTRIES:
            return
        slots = [channel if channel in channels else None for channel in CHANNEL_NAMES]
        columns = [values[:, channels.index(slot)].tolist() if slot else None for slot in slots]
        first, second, third = (
            column if column is not None else [None] * len(timestamps) for column in columns
        )
        entries = [
            f'{{"timestamp":{t:.6f},"first":{"null" if a is None else _number(a)},'
            f'"second":{"null" if b is None else _number(b)},'
            f'"third":{"null" if c is None else _number(c)},'
            f'"ift":null,"counter":{n},"dataloss":null}}'
            for t, a, b, c, n in zip(
                timestamps.tolist(), first, second, third, counters.tolist(), strict=True
            )
        ]
        self._pending.append(",".join(entries))
        self._pending_entries += len(entries)
        self.flush_if_due()

    def add_dataloss(self, dataloss: float, timestamp: float | None = None) -> None:
        """Send a data-loss entry (fraction 0–1 of frames lost) as its own
        one-element message, after the samples it covers (interface §3.2)."""
        self.flush()
        if not self.active:
            return
        ts = "null" if timestamp is None else f"{timestamp:.6f}"
        self.clients.broadcast(
            f'[{{"timestamp":{ts},"first":null,"second":null,"third":null,"ift":null,'
            f'"counter":null,"dataloss":{dataloss:.6g}}}]'
        )

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last_sent >= self.interval:
            self.flush()

    def flush(self) -> None:
        self._last_sent = time.monotonic()
        if not self._pending:
            return
        message = "[" + ",".join(self._pending) + "]"
        self._pending.clear()
        self._pending_entries = 0
        self.clients.broadcast(message)

    def send_error(self, kind: str, message: str) -> None:
        """Tell clients what went wrong: ``{"error": true, "type", "message"}``
        (an object, not an array, so clients tell it from data)."""
        self._send_now({"error": True, "type": kind, "message": message})

    def send_ift(self, points: list[dict[str, float]]) -> None:
        """The IFT result of the finished measurement as one stream entry."""
        self._send_now(
            [
                {
                    "timestamp": 1,
                    "first": None,
                    "second": None,
                    "third": None,
                    "ift": points,
                    "counter": 1,
                    "dataloss": None,
                }
            ]
        )

    def _send_now(self, payload: Any) -> None:
        # After the samples it follows.
        self.flush()
        if self.active:
            self.clients.broadcast(json.dumps(payload))

    def close(self) -> None:
        """Send what is left and close every client normally."""
        self.flush()
        self.clients.close_all()
