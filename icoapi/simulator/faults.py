"""Runtime-switchable fault injection for the simulator."""

from __future__ import annotations

import threading

from .protocol import parse_mac

RequestKey = tuple[int, int] | tuple[int, int, int]
"""``(block, block_command)`` or ``(block, block_command, subcommand)``.

The subcommand is data byte 0 of the request (e.g. the Bluetooth subcommand,
or the format byte of Streaming/Data).
"""


class Faults:
    """Faults the simulated hardware shows, switchable while it runs.

    All attributes may be changed from any thread at any time; the simulator
    reads them when it handles a request or sends a batch of frames.

    Attributes:
        drop_rate: Probability (0..1) that a stream frame is lost.  The frame
            counter still advances, so the library reports the loss.
        stall: While true the stream stays on but sends nothing (the device
            still answers requests) → ``StreamingTimeoutError``.
        link_loss_after: Seconds into every stream after which the Bluetooth
            link drops: the device goes silent and ``is_connected`` turns false.
            ``None`` disables it.
        ignore: Requests (see :data:`RequestKey`) that get no answer → the
            library raises ``NoResponseError`` after ~10.5 s of retries.
        error: Requests answered with an error frame → ``ErrorResponseError``
            (or ``UnsupportedFeatureException`` for the sensor configuration).
        response_delay: Seconds every answer is delayed (> 0.6 s makes the
            library retry).
        low_battery: The supply voltage reads as :attr:`low_battery_voltage`.
        low_battery_voltage: Supply voltage reported while ``low_battery``.
        hidden_devices: MAC addresses (any notation) that do not show up in
            the STU's scan, e.g. a device that went out of range.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drop_next = 0
        self.drop_rate: float = 0.0
        self.stall: bool = False
        self.link_loss_after: float | None = None
        self.ignore: set[RequestKey] = set()
        self.error: set[RequestKey] = set()
        self.response_delay: float = 0.0
        self.low_battery: bool = False
        self.low_battery_voltage: float = 3.1
        self.hidden_devices: set[str] = set()

    def drop_next(self, frames: int) -> None:
        """Lose the next ``frames`` stream frames (a burst; counters advance)."""
        if frames < 0:
            raise ValueError("Number of frames to drop must not be negative")
        with self._lock:
            self._drop_next += frames

    @property
    def pending_drops(self) -> int:
        """Frames of requested bursts not yet dropped."""
        return self._drop_next

    def take_burst(self, frames: int) -> int:
        """Consume up to ``frames`` of the pending burst; return how many."""
        if self._drop_next == 0:  # fast path without the lock
            return 0
        with self._lock:
            taken = min(frames, self._drop_next)
            self._drop_next -= taken
            return taken

    def ignores(self, block: int, command: int, subcommand: int | None) -> bool:
        """Tell whether a request must stay unanswered."""
        return _matches(self.ignore, block, command, subcommand)

    def errors(self, block: int, command: int, subcommand: int | None) -> bool:
        """Tell whether a request must be answered with an error frame."""
        return _matches(self.error, block, command, subcommand)

    def is_hidden(self, mac: bytes) -> bool:
        """Tell whether the device with ``mac`` is hidden from the scan."""
        return any(parse_mac(entry) == mac for entry in list(self.hidden_devices))

    def clear(self) -> None:
        """Switch every fault off."""
        with self._lock:
            self._drop_next = 0
        self.drop_rate = 0.0
        self.stall = False
        self.link_loss_after = None
        self.ignore = set()
        self.error = set()
        self.response_delay = 0.0
        self.low_battery = False
        self.hidden_devices = set()


def _matches(rules: set[RequestKey], block: int, command: int, subcommand: int | None) -> bool:
    if not rules:
        return False
    if (block, command) in rules:
        return True
    return subcommand is not None and (block, command, subcommand) in rules
