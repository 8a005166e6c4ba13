"""The owner of the CAN link: opens and closes the bus, serializes access to it,
tracks what is connected and turns library and bus errors into the service's.

Every hardware request goes through :meth:`LinkOwner._exclusive`, which

* serializes access (one request sequence on the bus at a time),
* checks the link state and the measurement lease before acting,
* bounds the time of the whole operation, and
* turns library and bus errors into the service's errors.

A bus-off controller (see :mod:`icoapi.system.bus_health`) makes the link
unavailable without closing it: requests are refused at once with the reason,
``GET /state`` shows it (``can_ready`` false, ``link_error``), and the link is
usable again as soon as the controller restarts, by itself or through
``PUT /reset-can``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum

import can
from icotronic.can.error import (
    CANConnectionError,
    ErrorResponseError,
    NoResponseError,
    UnsupportedFeatureException,
)
from icotronic.can.node.sensor import SensorNode
from icotronic.can.node.stu import STU, AsyncSensorNodeManager

from icoapi.core.events import EventBus, SystemChanged
from icoapi.system.bus_health import BUS_OFF_DETAIL, BusHealth, controller_in_error
from icoapi.system.errors import (
    CanLinkUnavailableError,
    CanNoResponseError,
    HardwareTimeoutError,
    IncorrectStateError,
    MeasurementRunningError,
    UnsupportedFeatureError,
)
from icoapi.system.link import CanLinkConfig
from icoapi.system.notifier import BatchingNotifier
from icoapi.system.schemas import ConnectedDevice, LinkState, SensorDeviceInfo, SystemSnapshot
from icoapi.system.timeouts import AttemptLimitedSPU, HardwareTimeouts

logger = logging.getLogger(__name__)


class DuringMeasurement(Enum):
    """Whether an operation may run while a measurement holds the device."""

    REFUSED = "refused"  # it would disturb the stream (MeasurementRunningError)
    ALLOWED = "allowed"  # a read beside the stream
    LEASE_ONLY = "lease only"  # for the holder of the measurement lease only


class LinkOwner:
    """Owns the python-can bus, icotronic's STU object and the connected device."""

    def __init__(
        self,
        link: CanLinkConfig,
        events: EventBus,
        timeouts: HardwareTimeouts | None = None,
    ) -> None:
        self.link = link
        self.events = events
        self.timeouts = timeouts or HardwareTimeouts()
        self.state = LinkState.DISCONNECTED
        # The running measurement's lease, or None. A token rather than a flag: a
        # lease that ended early (device lost) must not end a later one when its
        # holder finally leaves.
        self._lease: object | None = None
        self.link_error: str | None = None
        self.device: ConnectedDevice | None = None
        self._lock = asyncio.Lock()
        self._bus: can.BusABC | None = None
        self._notifier: can.Notifier | None = None
        self._health: BusHealth | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._stu: STU | None = None
        self._sensor: SensorNode | None = None
        self._sensor_manager: AsyncSensorNodeManager | None = None
        self._scan: asyncio.Task[list[SensorDeviceInfo]] | None = None
        self._stu_mac: str | None = None

    # -- state ------------------------------------------------------------------------

    @property
    def can_ready(self) -> bool:
        return self.state is not LinkState.DISCONNECTED and not self.bus_off

    @property
    def bus_off(self) -> bool:
        """The CAN controller is bus-off: the link is open but carries nothing."""
        health = self._health
        reported = health is not None and health.reported_bus_off
        return reported or controller_in_error(self._bus)

    @property
    def bus_errors(self) -> int:
        """Error frames (other than bus-off) the controller reported on this link."""
        return self._health.bus_errors if self._health is not None else 0

    def _bus_health_changed(self) -> None:
        self.events.publish(SystemChanged())
        self._watch_bus_off()

    def _receiving_failed(self, health: BusHealth, error: Exception) -> None:
        """The bus cannot receive any more: the link is down until PUT /reset-can
        (unless this is the report of a link closed meanwhile)."""
        if health is self._health:
            self._link_failed(error)

    def _watch_bus_off(self) -> None:
        """While bus-off, make sure the link gets reopened if it stays so (drivers
        that report bus-off only as ``bus.state`` are noticed on their first
        refused request)."""
        running = self._recovery is not None and not self._recovery.done()
        if self.bus_off and self.timeouts.bus_off_reset > 0 and not running:
            self._recovery = asyncio.get_running_loop().create_task(
                self._recover_from_bus_off(), name="can-bus-off-recovery"
            )

    async def _recover_from_bus_off(self) -> None:
        """Reopen the link when the controller stays bus-off (a controller that
        restarts by itself, e.g. with socketcan's restart-ms, is left alone). A
        running measurement is left to end by itself first (its stream is silent)."""
        delay = self.timeouts.bus_off_reset
        while True:
            await asyncio.sleep(delay)
            if self._bus is None or not self.bus_off:
                return
            if self.measuring:
                continue
            logger.warning("The CAN controller stayed bus-off for %g s: reopening the link", delay)
            try:
                await self.reset_can()
            except (CanLinkUnavailableError, MeasurementRunningError) as error:
                logger.error("Reopening the CAN link after bus-off failed: %s", error.detail)
            return

    @property
    def measuring(self) -> bool:
        """A measurement holds the connected device."""
        return self._lease is not None

    def _set_state(self, state: LinkState) -> None:
        if state is not self.state:
            logger.debug("ICOtronic system state %s -> %s", self.state, state)
            self.state = state
            self.events.publish(SystemChanged())

    def _set_lease(self, lease: object | None) -> None:
        if lease is not self._lease:
            logger.debug("Measurement lease %s", "taken" if lease is not None else "ended")
            self._lease = lease
            self.events.publish(SystemChanged())

    def _require(
        self, *allowed: LinkState, during: DuringMeasurement = DuringMeasurement.REFUSED
    ) -> None:
        if self.state is LinkState.DISCONNECTED and LinkState.DISCONNECTED not in allowed:
            raise CanLinkUnavailableError(self._unavailable_detail())
        if self.bus_off and self.state is not LinkState.DISCONNECTED:
            self._watch_bus_off()
            raise CanLinkUnavailableError(self._unavailable_detail())
        if self.measuring:
            if during is DuringMeasurement.REFUSED:
                raise MeasurementRunningError()
        elif during is DuringMeasurement.LEASE_ONLY:
            raise IncorrectStateError()
        if self.state not in allowed:
            raise IncorrectStateError()

    def _unavailable_detail(self) -> str:
        if self.bus_off:
            return BUS_OFF_DETAIL
        detail = CanLinkUnavailableError.default_detail
        return f"{detail} Cause: {self.link_error}" if self.link_error else detail

    # -- link lifecycle -----------------------------------------------------------------

    async def open(self) -> bool:
        """Open the CAN link. Failure is recorded, not raised: the service keeps
        running without hardware and ``PUT /reset-can`` retries."""
        async with self._lock:
            return await self._open()

    async def _open(self) -> bool:
        if self._bus is not None:
            return True
        try:
            kwargs = self.link.bus_kwargs()
            self._bus = await asyncio.to_thread(lambda: can.Bus(**kwargs))
        except Exception as error:
            self.link_error = f"{type(error).__name__}: {error}"
            logger.error("Could not open the CAN link (%s): %s", self.link.describe(), error)
            self._set_state(LinkState.DISCONNECTED)
            return False
        health = BusHealth(
            self._bus_health_changed, lambda error: self._receiving_failed(health, error)
        )
        self._health = health
        # A short receive timeout lets close() stop the reader thread quickly.
        self._notifier = BatchingNotifier(
            self._bus, [self._health], timeout=0.1, loop=asyncio.get_running_loop()
        )
        self._stu = STU(
            AttemptLimitedSPU(self._bus, self._notifier, self.timeouts.request_attempts)
        )
        self.link_error = None
        self._set_state(LinkState.STU_CONNECTED)
        logger.info("CAN link open: %s", self.link.describe())
        return True

    async def close(self) -> None:
        """Disconnect the device (if any) and release the bus."""
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        recovery, self._recovery = self._recovery, None
        if recovery is not None and recovery is not asyncio.current_task():
            recovery.cancel()
        if self._sensor_manager is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._sensor_manager.__aexit__(None, None, None)
        self._forget_device()
        notifier, self._notifier = self._notifier, None
        bus, self._bus = self._bus, None
        self._health = None
        self._stu = None
        self._stu_mac = None
        # The notifier's reader stops within its receive timeout.
        if notifier is not None:
            await asyncio.to_thread(notifier.stop)
        if bus is not None:
            await asyncio.to_thread(bus.shutdown)
        self._set_state(LinkState.DISCONNECTED)

    async def reset_can(self) -> bool:
        """Tear down and reopen the CAN link (refused while measuring); this also
        restarts a bus-off controller."""
        async with self._lock:
            if self.measuring:
                raise MeasurementRunningError()
            await self._close()
            if not await self._open():
                raise CanLinkUnavailableError(self._unavailable_detail())
        logger.info("CAN link reset")
        return True

    def _forget_device(self) -> None:
        """The device is gone for us, and with it the measurement lease on it."""
        self._sensor = None
        self._sensor_manager = None
        self._set_lease(None)
        if self.device is not None:
            self.device = None
            self.events.publish(SystemChanged())
        if self.state is LinkState.SENSOR_CONNECTED:
            self._set_state(LinkState.STU_CONNECTED)

    # -- serialized access ------------------------------------------------------------

    @asynccontextmanager
    async def _exclusive(
        self,
        *allowed: LinkState,
        during: DuringMeasurement = DuringMeasurement.REFUSED,
        timeout: float | None = None,
    ) -> AsyncIterator[STU]:
        """Hold the bus for one operation: check state and lease, bound time, map errors."""
        async with self._lock:
            self._require(*allowed, during=during)
            assert self._stu is not None
            async with self._translate_errors(timeout or self.timeouts.request):
                yield self._stu

    @asynccontextmanager
    async def _translate_errors(self, timeout: float) -> AsyncIterator[None]:
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                yield
        except TimeoutError as error:
            if deadline.expired():
                raise HardwareTimeoutError(
                    f"The ICOtronic system did not complete the operation within {timeout:g} s."
                ) from error
            raise
        except NoResponseError as error:
            logger.warning("No answer on the CAN bus: %s", error)
            raise CanNoResponseError() from error
        except ErrorResponseError as error:
            logger.warning("Error answer on the CAN bus: %s", error)
            raise CanNoResponseError() from error
        except UnsupportedFeatureException as error:
            raise UnsupportedFeatureError() from error
        except (can.CanError, OSError, CANConnectionError) as error:
            if self.bus_off:
                # The controller is bus-off: the link stays open and is usable
                # again when the controller restarts.
                logger.warning("CAN request failed while bus-off: %s", error)
                self._watch_bus_off()
                raise CanLinkUnavailableError(BUS_OFF_DETAIL) from error
            # The bus itself failed (adapter unplugged, socket closed).
            self._link_failed(error)
            raise CanLinkUnavailableError(self._unavailable_detail()) from error

    def _link_failed(self, error: BaseException) -> None:
        """The bus itself failed: the link is down until PUT /reset-can reopens it."""
        self.link_error = f"{type(error).__name__}: {error}"
        logger.error("CAN link failed: %s", error)
        self._sensor = None
        self._sensor_manager = None
        if self.device is not None:
            self.device = None
            self.events.publish(SystemChanged())
        self._set_lease(None)
        self._set_state(LinkState.DISCONNECTED)

    def snapshot(self) -> SystemSnapshot:
        """Link and device state for the state endpoint (never waits for the bus)."""
        return SystemSnapshot(
            link_state=self.state,
            measuring=self.measuring,
            link_error=BUS_OFF_DETAIL if self.bus_off else self.link_error,
            can_interface=self.link.describe(),
            device=self.device,
        )
