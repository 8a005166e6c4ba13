"""Operations on the STU and the sensor devices: scan, connect, rename, ADC,
supply voltage. Each holds the bus through :meth:`LinkOwner._exclusive`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from icotronic.can.adc import ADCConfiguration
from icotronic.can.error import ErrorResponseError, NoResponseError
from icotronic.can.node.stu import STU
from netaddr import EUI

from icoapi.core.events import SystemChanged
from icoapi.system.errors import (
    DeviceUnreachableError,
    IncorrectStateError,
    MeasurementRunningError,
)
from icoapi.system.link_owner import DuringMeasurement, LinkOwner
from icoapi.system.schemas import (
    ADCSettings,
    ConnectedDevice,
    LinkState,
    RenameResponse,
    SensorDeviceInfo,
    STUInfo,
    normalize_mac,
)

logger = logging.getLogger(__name__)

STU_NAME = "STU 1"
STU_DEVICE_NUMBER = 1
# Pause between two polls of the STU's list of devices during a device search.
SEARCH_POLL_INTERVAL = 0.1
STU_OPERATING_STATE = 0x25  # Get / Application / Operating


class DeviceOperations(LinkOwner):
    """The STU and sensor-device requests of :class:`~icoapi.system.service.ICOSystem`."""

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
        holds the bus (a connect searching for an absent device, a scan) or the
        controller is bus-off, the answer comes from the known state instead of
        from the STU."""
        if self.state is LinkState.DISCONNECTED:
            return False
        if self.measuring or self._lock.locked() or self.bus_off:
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


def adc_settings(adc: ADCConfiguration) -> ADCSettings:
    return ADCSettings(
        prescaler=int(adc.prescaler),
        acquisition_time=int(adc.acquisition_time),
        oversampling_rate=int(adc.oversampling_rate),
        reference_voltage=round(float(adc.reference_voltage), 3),
    )
