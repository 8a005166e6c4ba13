"""What the CAN controller reports about the bus: error frames and bus-off.

A controller that sees too many transmit errors goes **bus-off**: it neither
sends nor receives until it restarts (by itself after socketcan's ``restart-ms``,
or when the adapter is reopened). python-can passes the controller's error
frames like data frames, with ``is_error_frame`` set and the error classes of
Linux's ``can/error.h`` in the identifier; some drivers (e.g. PCAN) also report
the controller state as ``bus.state``."""

from __future__ import annotations

import logging
from collections.abc import Callable

import can

logger = logging.getLogger(__name__)

CAN_ERR_BUSOFF = 0x040
CAN_ERR_RESTARTED = 0x100

BUS_OFF_DETAIL = (
    "The CAN controller is bus-off (too many transmit errors on the bus: check the "
    "wiring and the termination). It restarts by itself if the adapter is set up to "
    "(socketcan restart-ms), or with PUT /api/v1/reset-can."
)


class BusHealth(can.Listener):
    """Follows the controller's error frames (on the event loop, through the notifier).

    Args:
        changed: Called when bus-off begins or ends.
        failed: Called when receiving failed for good (the notifier's reader
            thread ends, as python-can's does): nothing more will arrive.
    """

    def __init__(self, changed: Callable[[], None], failed: Callable[[Exception], None]) -> None:
        self._changed = changed
        self._failed = failed
        self.reported_bus_off = False
        """The last controller report was bus-off (no restart since)."""
        self.bus_errors = 0
        """Error frames other than bus-off and restart (damaged frames, repeated by
        their sender: a sign of a bad bus, no data lost)."""

    def on_message_received(self, msg: can.Message) -> None:
        if not msg.is_error_frame:
            return
        classes = msg.arbitration_id
        if classes & CAN_ERR_BUSOFF:
            if not self.reported_bus_off:
                self.reported_bus_off = True
                logger.error("CAN bus-off: the controller stopped sending and receiving")
                self._changed()
        elif classes & CAN_ERR_RESTARTED:
            if self.reported_bus_off:
                self.reported_bus_off = False
                logger.info("CAN controller restarted after bus-off")
                self._changed()
        else:
            self.bus_errors += 1
            logger.debug("CAN error frame 0x%03X (%d so far)", classes, self.bus_errors)

    def on_error(self, exc: Exception) -> None:
        logger.error("Receiving from the CAN bus failed: %s", exc)
        self._failed(exc)


def controller_in_error(bus: can.BusABC | None) -> bool:
    """The bus's driver reports its controller as bus-off (``BusState.ERROR``)."""
    if bus is None:
        return False
    try:
        return bool(bus.state is can.BusState.ERROR)
    except Exception:  # a driver that cannot tell
        return False
