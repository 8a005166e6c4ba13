"""``SensorCatalog``: the parsed ``sensors.yaml``, cached and reloaded on change.

The measurement code asks for a sensor per channel; that must not re-read the
file each time. The catalog keeps the parsed file and only compares the file's
identity (inode, size, modification time) with one ``stat`` call. Methods may be
called from any thread."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from icoapi.core.documents import (
    DocumentInvalid,
    YamlSyntaxError,
    decode_yaml_bytes,
    parse_yaml,
)
from icoapi.core.events import ConfigChanged, Event
from icoapi.core.settings import BUNDLED_CONFIG_DIR
from icoapi.sensors.errors import SensorConfigError
from icoapi.sensors.schemas import (
    RAW_SENSOR,
    AvailableSensorInformation,
    Sensor,
    SensorFile,
    parse_sensor_file,
)

__all__ = ["BUNDLED_SENSORS_FILE", "RAW_SENSOR", "Sensor", "SensorCatalog", "SensorFile"]

logger = logging.getLogger(__name__)

BUNDLED_SENSORS_FILE = BUNDLED_CONFIG_DIR / "sensors.yaml"


@dataclass(frozen=True)
class _Signature:
    """What identifies one version of the file without reading it."""

    path: Path
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> _Signature:
        stat = os.stat(path)
        return cls(path, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class SensorCatalog:
    """Sensor definitions from ``path``; the bundled default while it is missing."""

    def __init__(self, path: Path, fallback: Path = BUNDLED_SENSORS_FILE) -> None:
        self.path = path
        self.fallback = fallback
        self._lock = threading.Lock()
        self._signature: _Signature | None = None
        self._result: SensorFile | SensorConfigError | None = None

    def current(self) -> SensorFile:
        """The parsed file, re-read only if it changed since the last call.

        :raises SensorConfigError: (422) the file is not valid; the detail names
            the problem and its line.
        """
        with self._lock:
            try:
                signature = self._stat()
            except OSError as error:
                raise self._failed(
                    f"{self.path.name} does not exist and the bundled default cannot be "
                    f"read ({error.strerror or error})."
                ) from error
            if signature != self._signature or self._result is None:
                self._result = self._load(signature)
                self._signature = signature
            result = self._result
        if isinstance(result, SensorConfigError):
            raise result
        return result

    def on_config_changed(self, event: Event) -> None:
        """Event listener: a replaced sensors.yaml is read again at its next use
        (no I/O here: the listener runs on the event loop)."""
        if isinstance(event, ConfigChanged) and event.filename == self.path.name:
            with self._lock:
                self._signature = None
                self._result = None

    def reload(self) -> SensorFile:
        """Forget the cached file and read it again (after the file was replaced)."""
        with self._lock:
            self._signature = None
            self._result = None
        return self.current()

    def _stat(self) -> _Signature:
        try:
            return _Signature.of(self.path)
        except FileNotFoundError:
            pass
        except OSError as error:
            logger.warning("Cannot access %s (%s); using the bundled sensors", self.path, error)
        return _Signature.of(self.fallback)

    def _load(self, signature: _Signature) -> SensorFile | SensorConfigError:
        path = signature.path
        if path != self.path:
            logger.warning("%s does not exist; using the bundled default sensors", self.path)
        else:
            logger.debug("Reading sensor definitions from %s", path)
        name = path.name
        try:
            document = parse_yaml(decode_yaml_bytes(path.read_bytes()))
        except OSError as error:
            return self._failed(f"Cannot read {name}: {error.strerror or error}.")
        except YamlSyntaxError as error:
            return self._failed(f"{name} is not valid YAML: {error}.")
        try:
            if document.duplicate_keys:
                raise DocumentInvalid(document.duplicate_keys)
            sensor_file = parse_sensor_file(document.data)
        except DocumentInvalid as error:
            problems = "; ".join(str(problem) for problem in document.locate(error.problems))
            return self._failed(f"Invalid sensor configuration in {name}: {problems}.")
        logger.info(
            "Loaded %d sensors and %d configurations from %s",
            len(sensor_file.sensors),
            len(sensor_file.sensor_configurations),
            path,
        )
        return sensor_file

    @staticmethod
    def _failed(detail: str) -> SensorConfigError:
        logger.error("%s", detail)
        return SensorConfigError(detail)

    def available(self) -> AvailableSensorInformation:
        """The body of ``GET /sensor``."""
        return AvailableSensorInformation.from_file(self.current())

    def sensor_for_channel(self, sensor_id: str | None, channel_number: int) -> Sensor | None:
        """The sensor that converts a measurement channel's values.

        1. ``sensor_id`` names a known sensor: that sensor.
        2. Channel 0 (disabled): ``None``.
        3. Channel ≥ 1: the default configuration's sensor for that channel, else
           the sensor at list position ``channel_number − 1``.
        4. Otherwise a raw sensor (−100..100 over 0..3.3 V).

        :raises SensorConfigError: ``sensors.yaml`` is invalid.
        """
        sensor_file = self.current()
        if sensor_id:
            sensor = sensor_file.sensor(sensor_id)
            if sensor is not None:
                return sensor
        if channel_number == 0:
            return None
        if channel_number >= 1:
            configuration = sensor_file.default_configuration
            if configuration is not None:
                mapped = sensor_file.channel_sensors(configuration).get(channel_number)
                if mapped is not None:
                    return mapped
            if channel_number <= len(sensor_file.sensors):
                return sensor_file.sensors[channel_number - 1]
        return RAW_SENSOR
