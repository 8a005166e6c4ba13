"""``ICOSystem``: the one owner of the CAN link and of the ICOtronic devices on it.

It is built in layers, one concern each:

* :class:`~icoapi.system.link_owner.LinkOwner`: the bus, serialized access, the
  link state and the translation of library and bus errors;
* :class:`~icoapi.system.devices.DeviceOperations`: requests to the STU and the
  sensor devices;
* :class:`ICOSystem` (here): the measurement lease and the data stream.

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

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from icotronic.can.error import ErrorResponseError, NoResponseError
from icotronic.can.sensor import SensorConfiguration
from icotronic.can.streaming import StreamingConfiguration
from icotronic.can.streaming.buffer import AsyncStreamBuffer

from icoapi.system.devices import DeviceOperations, adc_settings
from icoapi.system.errors import IncorrectStateError, MeasurementRunningError
from icoapi.system.link_owner import DuringMeasurement
from icoapi.system.schemas import ADCSettings, LinkState, normalize_mac
from icoapi.system.stream import DataStream

__all__ = ["ICOSystem", "adc_settings"]


class ICOSystem(DeviceOperations):
    """Owns the python-can bus, icotronic's STU object and the connected device."""

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
