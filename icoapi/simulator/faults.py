"""Runtime-switchable fault injection for the simulator.

Two kinds of settings live here. *Faults* are off by default: a test switches
one on to see how the library and the service cope. *Hardware's rough edges*
(bursts, the bus's bandwidth, RSSI noise, battery drain) have defaults that
describe real hardware as far as it is known, and :meth:`Faults.clear` restores
those defaults rather than switching them off. ``docs/simulator.md`` lists all
of them with their defaults."""

from __future__ import annotations

import threading

from .protocol import parse_mac

BURST_INTERVAL = 0.0
"""Default seconds between Bluetooth bursts."""
BURST_JITTER = 0.0
"""Default jitter of the burst interval."""
BUS_BITRATE = 1_000_000
"""Default CAN bit rate (ICOtronic systems run at 1 Mbit/s)."""
STU_QUEUE_FRAMES = 256
"""Default size of the STU's transmit queue in frames: more than a 30 ms Bluetooth
connection event brings at the highest default frame rate (143 frames at 4762
frames/s), which hardware must hold since it streams at that rate with little loss."""
RSSI_NOISE = 0.0
"""Default RSSI noise in dB."""

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
        stu_silent: The STU hangs: it answers nothing (neither for itself nor
            for the sensor device behind it) and forwards no stream frames.
        error_frame_rate: CAN error frames per second the host's adapter
            reports while a stream runs (bus errors; the damaged frame is
            repeated by the controller, so no data is lost).
        bus_off_after: Seconds into every stream after which the host's CAN
            adapter goes bus-off (see :mod:`icoapi.simulator.plugin`); ``None``
            disables it. Only adapters of the ``icosim`` interface have a
            controller state.
        bus_off_recovery: Seconds after which a bus-off adapter restarts by
            itself; ``None``: only reopening it helps.

    Hardware's rough edges (defaults as on hardware, see ``docs/simulator.md``):

    Attributes:
        burst_interval: Seconds between two Bluetooth connection events; the
            frames sampled in between reach the STU together. ``0`` delivers
            every frame at its sample time.
        burst_jitter: Each interval varies by up to this many seconds.
        bus_bitrate: Bit rate of the CAN bus in bit/s: stream frames cannot
            reach the host faster than the bus carries them. ``None`` removes
            the ceiling (benchmarks of the simulator itself).
        stu_queue_frames: Frames the STU's transmit queue holds while the bus
            is busy; a frame that finds it full is lost.
        rssi_noise: Standard deviation in dB of every RSSI reading.
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
        self.stu_silent: bool = False
        self.error_frame_rate: float = 0.0
        self.bus_off_after: float | None = None
        self.bus_off_recovery: float | None = 1.0
        self._set_rough_edges()

    def _set_rough_edges(self) -> None:
        self.burst_interval: float = BURST_INTERVAL
        self.burst_jitter: float = BURST_JITTER
        self.bus_bitrate: int | None = BUS_BITRATE
        self.stu_queue_frames: int = STU_QUEUE_FRAMES
        self.rssi_noise: float = RSSI_NOISE

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
        """Switch every fault off and restore the rough edges' defaults."""
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
        self.stu_silent = False
        self.error_frame_rate = 0.0
        self.bus_off_after = None
        self.bus_off_recovery = 1.0
        self._set_rough_edges()


def _matches(rules: set[RequestKey], block: int, command: int, subcommand: int | None) -> bool:
    if not rules:
        return False
    if (block, command) in rules:
        return True
    return subcommand is not None and (block, command, subcommand) in rules
