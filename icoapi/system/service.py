"""``ICOSystem``: the one owner of the CAN link and of the ICOtronic devices on it.

Every hardware request goes through :meth:`ICOSystem._exclusive`, which

* serializes access (one request sequence on the bus at a time),
* checks the link state and the measurement lease before acting,
* bounds the time of the whole operation, and
* turns library and bus errors into the service's errors.

Link state (what is connected)::

    DISCONNECTED --open--> STU_CONNECTED --connect--> SENSOR_CONNECTED
         ^                      |  ^                        |
         +------close-----------+  +-------disconnect-------+

Measurement lease (who may use the connected device): taken in
SENSOR_CONNECTED by :meth:`ICOSystem.measurement_lease`; while it is held,
``measuring`` is true and operations that would disturb the stream are refused.
It ends when its holder leaves it, or earlier when the device or the link is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING

import can
from icotronic.can.adc import ADCConfiguration
from icotronic.can.error import (
    CANConnectionError,
    ErrorResponseError,
    NoResponseError,
    UnsupportedFeatureException,
)
from icotronic.can.node.sensor import SensorNode
from icotronic.can.node.stu import STU, AsyncSensorNodeManager
from icotronic.can.sensor import SensorConfiguration
from icotronic.can.streaming import StreamingConfiguration
from icotronic.can.streaming.buffer import AsyncStreamBuffer
from netaddr import EUI

from icoapi.core.events import EventBus, SystemChanged
from icoapi.system.errors import (
    CanLinkUnavailableError,
    CanNoResponseError,
    DeviceUnreachableError,
    HardwareTimeoutError,
    IncorrectStateError,
    MeasurementRunningError,
    UnsupportedFeatureError,
)
from icoapi.system.link import CanLinkConfig
from icoapi.system.notifier import BatchingNotifier
from icoapi.system.schemas import (
    ADCSettings,
    ConnectedDevice,
    LinkState,
    RenameResponse,
    SensorDeviceInfo,
    STUInfo,
    SystemSnapshot,
    normalize_mac,
)
from icoapi.system.stream import DataStream
from icoapi.system.timeouts import AttemptLimitedSPU, HardwareTimeouts

if TYPE_CHECKING:
    from icoapi.simulator import Simulator, SimulatorConfig

logger = logging.getLogger(__name__)

STU_NAME = "STU 1"
STU_DEVICE_NUMBER = 1
# Pause between two polls of the STU's list of devices during a device search.
SEARCH_POLL_INTERVAL = 0.1
STU_OPERATING_STATE = 0x25  # Get / Application / Operating


class DuringMeasurement(Enum):
    """Whether an operation may run while a measurement holds the device."""

    REFUSED = "refused"  # it would disturb the stream (MeasurementRunningError)
    ALLOWED = "allowed"  # a read beside the stream
    LEASE_ONLY = "lease only"  # for the holder of the measurement lease only


class ICOSystem:
    """Owns the python-can bus, icotronic's STU object and the connected device."""

    def __init__(
        self,
        link: CanLinkConfig,
        events: EventBus,
        timeouts: HardwareTimeouts | None = None,
        simulator_config: SimulatorConfig | None = None,
    ) -> None:
        self.link = link
        self.events = events
        self.timeouts = timeouts or HardwareTimeouts()
        self.simulator_config = simulator_config
        self.simulator: Simulator | None = None
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
        self._stu: STU | None = None
        self._sensor: SensorNode | None = None
        self._sensor_manager: AsyncSensorNodeManager | None = None
        self._scan: asyncio.Task[list[SensorDeviceInfo]] | None = None
        self._stu_mac: str | None = None

    # -- state ------------------------------------------------------------------------

    @property
    def can_ready(self) -> bool:
        return self.state is not LinkState.DISCONNECTED

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
        if self.measuring:
            if during is DuringMeasurement.REFUSED:
                raise MeasurementRunningError()
        elif during is DuringMeasurement.LEASE_ONLY:
            raise IncorrectStateError()
        if self.state not in allowed:
            raise IncorrectStateError()

    def _unavailable_detail(self) -> str:
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
        channel: str | None = None
        try:
            if self.link.uses_simulator:
                channel = self.link.simulator_channel()
                await asyncio.to_thread(self._start_simulator, channel)
            kwargs = self.link.bus_kwargs(channel)
            self._bus = await asyncio.to_thread(lambda: can.Bus(**kwargs))
        except Exception as error:
            self.link_error = f"{type(error).__name__}: {error}"
            logger.error("Could not open the CAN link (%s): %s", self.link.describe(), error)
            await asyncio.to_thread(self._stop_simulator)
            self._set_state(LinkState.DISCONNECTED)
            return False
        # A short receive timeout lets close() stop the reader thread quickly.
        self._notifier = BatchingNotifier(
            self._bus, [], timeout=0.1, loop=asyncio.get_running_loop()
        )
        self._stu = STU(
            AttemptLimitedSPU(self._bus, self._notifier, self.timeouts.request_attempts)
        )
        self.link_error = None
        self._set_state(LinkState.STU_CONNECTED)
        logger.info("CAN link open: %s", self.link.describe())
        return True

    def _start_simulator(self, channel: str) -> None:
        from icoapi.simulator import Simulator, SimulatorConfig

        config = self.simulator_config or SimulatorConfig.default()
        self.simulator = Simulator(config, interface="virtual", channel=channel)
        self.simulator.start()

    def _stop_simulator(self) -> None:
        simulator, self.simulator = self.simulator, None
        if simulator is not None:
            simulator.stop()

    async def close(self) -> None:
        """Disconnect the device (if any) and release the bus."""
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        if self._sensor_manager is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._sensor_manager.__aexit__(None, None, None)
        self._forget_device()
        notifier, self._notifier = self._notifier, None
        bus, self._bus = self._bus, None
        self._stu = None
        self._stu_mac = None
        # The notifier's reader and the simulator each stop within their receive
        # timeout; stop both at once.
        await asyncio.gather(
            asyncio.to_thread(notifier.stop) if notifier is not None else asyncio.sleep(0),
            asyncio.to_thread(self._stop_simulator),
        )
        if bus is not None:
            await asyncio.to_thread(bus.shutdown)
        self._set_state(LinkState.DISCONNECTED)

    async def reset_can(self) -> bool:
        """Tear down and reopen the CAN link (refused while measuring)."""
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
            # The bus itself failed (adapter unplugged, socket closed): the link
            # is down until PUT /reset-can reopens it.
            self.link_error = f"{type(error).__name__}: {error}"
            logger.error("CAN link failed: %s", error)
            self._sensor = None
            self._sensor_manager = None
            self.device = None
            self._set_lease(None)
            self._set_state(LinkState.DISCONNECTED)
            raise CanLinkUnavailableError(self._unavailable_detail()) from error

    # -- STU --------------------------------------------------------------------------

    async def get_stu(self) -> STUInfo:
        async with self._exclusive(
            LinkState.STU_CONNECTED, LinkState.SENSOR_CONNECTED, during=DuringMeasurement.ALLOWED
        ) as stu:
            if self._stu_mac is None:
                self._stu_mac = normalize_mac(str(await stu.get_mac_address()))
        return STUInfo(name=STU_NAME, device_number=STU_DEVICE_NUMBER, mac_address=self._stu_mac)

    async def reset_stu(self) -> None:
        """Reset the STU and wait (bounded) until it is operational again.

        Allowed in any state but a measurement: a connected sensor device is
        disconnected cleanly first (a reset drops the link anyway, but the device
        would stay ours on paper, and a fresh client could not find it)."""
        async with self._exclusive(
            LinkState.STU_CONNECTED, LinkState.SENSOR_CONNECTED, timeout=self.timeouts.reset
        ) as stu:
            if self.state is LinkState.SENSOR_CONNECTED:
                await self._disconnect_for_reset()
            await stu.reset()
            while True:
                state = await stu.get_state()
                if int(getattr(state, "value", STU_OPERATING_STATE)) == STU_OPERATING_STATE:
                    break
                await asyncio.sleep(0.2)
        logger.info("STU reset")

    async def _disconnect_for_reset(self) -> None:
        """Disconnect the device while holding the bus (for ``reset_stu``). A
        failure is logged, not raised: the reset that follows drops the link."""
        manager, device = self._sensor_manager, self.device
        logger.debug("Disconnecting sensor device %s before the STU reset", device)
        try:
            if manager is not None:
                await manager.__aexit__(None, None, None)
        except (NoResponseError, ErrorResponseError) as error:
            logger.warning("Could not disconnect %s before the STU reset: %s", device, error)
        finally:
            self._forget_device()
        logger.info("Disconnected from sensor device %s for the STU reset", device)

    async def is_device_connected(self) -> bool:
        """Whether the STU is connected to a sensor device.

        A status read never waits for the hardware: while another operation
        holds the bus (a connect searching for an absent device, a scan), the
        answer comes from the known state instead of from the STU."""
        if self.state is LinkState.DISCONNECTED:
            return False
        if self.measuring or self._lock.locked():
            return self.state is LinkState.SENSOR_CONNECTED
        # No await between the check above and taking the free lock below.
        async with self._exclusive(LinkState.STU_CONNECTED, LinkState.SENSOR_CONNECTED) as stu:
            connected = bool(await stu.is_connected())
        if not connected and self.state is LinkState.SENSOR_CONNECTED:
            logger.warning("The STU lost the connection to %s", self.device)
            async with self._lock:
                self._forget_device()
        return connected

    # -- sensor devices ---------------------------------------------------------------

    async def scan(self) -> list[SensorDeviceInfo]:
        """List the sensor devices in reach. Concurrent callers share one scan."""
        if self._scan is None or self._scan.done():
            self._scan = asyncio.create_task(self._do_scan(), name="device-scan")
        return await asyncio.shield(self._scan)

    async def _do_scan(self) -> list[SensorDeviceInfo]:
        async with self._exclusive(
            LinkState.STU_CONNECTED, LinkState.SENSOR_CONNECTED, timeout=self.timeouts.scan
        ) as stu:
            nodes = await stu.collect_sensor_nodes()
        devices = [
            SensorDeviceInfo(
                name=node.name,
                device_number=node.sensor_node_number,
                mac_address=normalize_mac(str(node.mac_address)),
                rssi=node.rssi,
            )
            for node in nodes
        ]
        devices.sort(key=lambda device: device.device_number)
        logger.info("Found %d sensor device(s)", len(devices))
        return devices

    async def connect(self, mac_address: str) -> ConnectedDevice:
        mac = normalize_mac(mac_address)
        async with self._exclusive(LinkState.STU_CONNECTED, timeout=self.timeouts.connect) as stu:
            logger.debug("Connecting to sensor device %s", mac)
            await self._search_device(stu, mac)
            manager = stu.connect_sensor_node(EUI(mac))
            try:
                sensor = await manager.__aenter__()
            except TimeoutError as error:
                # The library's own 20 s search limit (our deadline would surface
                # as a cancellation here, not as TimeoutError).
                logger.warning("Could not connect to %s: %s", mac, error)
                raise DeviceUnreachableError() from error
            try:
                name = await sensor.get_name()
            except BaseException:
                await manager.__aexit__(None, None, None)
                raise
            self._sensor_manager = manager
            self._sensor = sensor
            self.device = ConnectedDevice(name=name, mac_address=mac)
            self._set_state(LinkState.SENSOR_CONNECTED)
        logger.info("Connected to sensor device %s (%s)", name, mac)
        return self.device

    async def _search_device(self, stu: STU, mac: str) -> None:
        """Wait until the STU sees the device, at most ``timeouts.device_search``
        seconds (the library alone would search for 20 s with the bus held)."""
        await stu.activate_bluetooth()
        wanted = EUI(mac)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeouts.device_search
        while not any(node.mac_address == wanted for node in await stu.get_sensor_nodes()):
            if loop.time() >= deadline:
                logger.warning(
                    "Sensor device %s not found within %g s",
                    mac,
                    self.timeouts.device_search,
                )
                raise DeviceUnreachableError()
            await asyncio.sleep(SEARCH_POLL_INTERVAL)

    async def disconnect(self) -> None:
        async with self._lock:
            self._require(LinkState.SENSOR_CONNECTED)
            manager = self._sensor_manager
            device = self.device
            try:
                if manager is not None:
                    async with self._translate_errors(self.timeouts.request):
                        await manager.__aexit__(None, None, None)
            finally:
                # Even if the STU did not answer, the device is gone for us: a
                # later connect starts from a clean state.
                self._forget_device()
        logger.info("Disconnected from sensor device %s", device)

    async def rename(self, mac_address: str, new_name: str) -> RenameResponse:
        mac = normalize_mac(mac_address)
        if self.measuring:
            raise MeasurementRunningError()
        if self.state is LinkState.SENSOR_CONNECTED:
            if self.device is not None and self.device.mac_address != mac:
                raise IncorrectStateError(
                    f"Another sensor device is connected; disconnect it before renaming {mac}."
                )
            async with self._exclusive(LinkState.SENSOR_CONNECTED):
                assert self._sensor is not None and self.device is not None
                old_name = await self._sensor.get_name()
                await self._sensor.set_name(new_name)
                self.device = ConnectedDevice(name=new_name, mac_address=mac)
            self.events.publish(SystemChanged())
        else:
            # Only the STU is connected: connect for the rename, then disconnect.
            await self.connect(mac)
            try:
                async with self._exclusive(LinkState.SENSOR_CONNECTED):
                    assert self._sensor is not None
                    old_name = await self._sensor.get_name()
                    await self._sensor.set_name(new_name)
            finally:
                with contextlib.suppress(Exception):
                    await self.disconnect()
        logger.info("Renamed sensor device %s from %s to %s", mac, old_name, new_name)
        return RenameResponse(name=new_name, old_name=old_name, mac_address=mac)

    def _require_device(self) -> None:
        if self.state in (LinkState.STU_CONNECTED, LinkState.DISCONNECTED):
            raise DeviceUnreachableError()

    async def read_adc(self) -> ADCSettings:
        self._require_device()
        async with self._exclusive(LinkState.SENSOR_CONNECTED):
            assert self._sensor is not None
            adc = await self._sensor.get_adc_configuration()
        return adc_settings(adc)

    async def write_adc(self, settings: ADCSettings) -> None:
        self._require_device()
        async with self._exclusive(LinkState.SENSOR_CONNECTED):
            assert self._sensor is not None
            await self._sensor.set_adc_configuration(**settings.model_dump())
        logger.info("ADC configuration set to %s", settings.model_dump())

    async def supply_voltage(self) -> tuple[float, str]:
        self._require_device()
        async with self._exclusive(LinkState.SENSOR_CONNECTED, during=DuringMeasurement.ALLOWED):
            assert self._sensor is not None
            voltage = await self._sensor.get_supply_voltage()
        return float(voltage), datetime.now(UTC).isoformat()

    # -- measurement lease -------------------------------------------------------------

    @asynccontextmanager
    async def measurement_lease(self, mac_address: str | None = None) -> AsyncIterator[None]:
        """Reserve the connected device for a measurement.

        While the lease is held ``measuring`` is true and every operation that
        would disturb the stream (rename, ADC writes, disconnect, resets) is
        refused; the holder uses the device through ``configure_measurement`` and
        ``open_data_stream``.
        """
        async with self._lock:
            if self.measuring:
                raise MeasurementRunningError()
            if self.state is not LinkState.SENSOR_CONNECTED:
                raise IncorrectStateError()
            assert self._sensor is not None and self.device is not None
            if mac_address is not None and normalize_mac(mac_address) != self.device.mac_address:
                raise IncorrectStateError(
                    f"Sensor device {normalize_mac(mac_address)} is not connected; the "
                    f"connected device is {self.device.mac_address}."
                )
            lease = object()
            self._set_lease(lease)
        try:
            yield
        finally:
            # The lease may have ended meanwhile (device or link lost during the run).
            if self._lease is lease:
                self._set_lease(None)

    async def configure_measurement(
        self, adc: ADCSettings, sensor_configuration: SensorConfiguration | None
    ) -> tuple[ADCSettings, str]:
        """For the lease holder: apply the ADC settings (and the channel-to-sensor
        mapping if given); return the settings the device reports back and its name."""
        async with self._exclusive(LinkState.SENSOR_CONNECTED, during=DuringMeasurement.LEASE_ONLY):
            sensor = self._sensor
            assert sensor is not None
            await sensor.set_adc_configuration(**adc.model_dump())
            if sensor_configuration is not None:
                await sensor.set_sensor_configuration(sensor_configuration)
            applied = adc_settings(await sensor.get_adc_configuration())
            try:
                name = str(await sensor.get_name())
            except (NoResponseError, ErrorResponseError):
                name = "noname"
        return applied, name

    async def open_data_stream(
        self, channels: StreamingConfiguration, frame_rate: float
    ) -> DataStream:
        """For the lease holder: start streaming ``channels``. Reading fails after
        ``timeouts.stream_silence`` seconds without a frame."""
        async with self._exclusive(LinkState.SENSOR_CONNECTED, during=DuringMeasurement.LEASE_ONLY):
            sensor = self._sensor
            assert sensor is not None
            # More than three seconds of frames waiting means the reader fell behind.
            buffer = AsyncStreamBuffer(
                self.timeouts.stream_silence, max_buffer_size=max(round(3 * frame_rate), 256)
            )
            sensor.spu.notifier.add_listener(buffer)
            stream = DataStream(sensor, buffer, self._lock, frame_rate)
            try:
                await sensor.start_streaming_data(channels)
            except BaseException:
                stream.close()
                raise
        return stream

    async def verify_device_link(self) -> bool:
        """After a stream failure: ask the STU whether the device is still there;
        forget it if not. Returns whether it is still connected."""
        try:
            async with self._exclusive(
                LinkState.SENSOR_CONNECTED,
                during=DuringMeasurement.ALLOWED,
                timeout=self.timeouts.request,
            ) as stu:
                connected = bool(await stu.is_connected())
        except Exception:
            connected = False
        if not connected:
            async with self._lock:
                self._forget_device()
        return connected

    def snapshot(self) -> SystemSnapshot:
        """Link and device state for the state endpoint (never waits for the bus)."""
        return SystemSnapshot(
            link_state=self.state,
            measuring=self.measuring,
            link_error=self.link_error,
            can_interface=self.link.describe(),
            device=self.device,
        )


def adc_settings(adc: ADCConfiguration) -> ADCSettings:
    return ADCSettings(
        prescaler=int(adc.prescaler),
        acquisition_time=int(adc.acquisition_time),
        oversampling_rate=int(adc.oversampling_rate),
        reference_voltage=round(float(adc.reference_voltage), 3),
    )
