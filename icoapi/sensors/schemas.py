"""The models of ``sensors.yaml`` and of ``GET /sensor``.

A sensor maps its output voltage range ``volt_min..volt_max`` linearly onto the
physical range ``phys_min..phys_max``. The conversion coefficients are always
derived from those four limits; values written in the file are ignored."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)

from icoapi.core.documents import (
    DocumentInvalid,
    Problem,
    problems_from_validation_error,
)


def sensor_coefficients(
    phys_min: float, phys_max: float, volt_min: float, volt_max: float
) -> tuple[float, float]:
    """``(k, d)`` of a sensor: ``phys = volts * k + d``.

    :raises ValueError: if ``volt_min == volt_max``."""
    if volt_max == volt_min:
        raise ValueError("volt_max and volt_min of a sensor must differ")
    k = (phys_max - phys_min) / (volt_max - volt_min)
    return k, phys_max - k * volt_max


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("expected non-empty string")
    return value


NonEmptyStr = Annotated[str, Field(strict=True), AfterValidator(_non_blank)]
# Strict: a quoted "3.3" or a boolean is a mistake in the file, not a number.
Limit = Annotated[float, Field(strict=True, allow_inf_nan=False)]
ChannelNumber = Annotated[int, Field(ge=1, le=255)]

# Keys older files carry; they were never used and are recomputed.
IGNORED_SENSOR_KEYS = ("scaling_factor", "offset")


class Sensor(BaseModel):
    """A sensor definition with its derived linear conversion."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "Acceleration 100g",
                    "sensor_type": "ADXL1001",
                    "sensor_id": "acc100g_01",
                    "unit": "g",
                    "dimension": "Acceleration",
                    "phys_min": -100.0,
                    "phys_max": 100.0,
                    "volt_min": 0.33,
                    "volt_max": 2.97,
                    "scaling_factor": 75.75757575757575,
                    "offset": -125.0,
                }
            ]
        },
    )

    name: NonEmptyStr
    sensor_type: Annotated[str, Field(strict=True)] | None = None
    sensor_id: NonEmptyStr
    unit: NonEmptyStr
    dimension: NonEmptyStr
    phys_min: Limit
    phys_max: Limit
    volt_min: Limit = Field(description="Output voltage at phys_min, in volt.")
    volt_max: Limit = Field(description="Output voltage at phys_max, in volt.")

    @model_validator(mode="before")
    @classmethod
    def _drop_derived_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if key not in IGNORED_SENSOR_KEYS}
        return data

    @field_validator("volt_max")
    @classmethod
    def _volt_range_not_empty(cls, value: float, info: ValidationInfo) -> float:
        # Equal limits would make the scaling factor a division by zero.
        if info.data.get("volt_min") == value:
            raise ValueError("volt_max must differ from volt_min")
        return value

    @computed_field  # type: ignore[prop-decorator]
    @property
    def scaling_factor(self) -> float:
        """k = (phys_max − phys_min) / (volt_max − volt_min), physical unit per volt."""
        return sensor_coefficients(self.phys_min, self.phys_max, self.volt_min, self.volt_max)[0]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def offset(self) -> float:
        """d = phys_max − k · volt_max, the physical value at 0 V."""
        return sensor_coefficients(self.phys_min, self.phys_max, self.volt_min, self.volt_max)[1]


# Used for channels that have no sensor definition: the synthetic "Raw" sensor
# MyTooliT ICOapi 0.2.1 uses for them (same name, id, unit and ranges).
RAW_SENSOR = Sensor(
    name="Raw",
    sensor_type=None,
    sensor_id="raw_default_01",
    unit="-",
    dimension="Raw",
    phys_min=-100.0,
    phys_max=100.0,
    volt_min=0.0,
    volt_max=3.3,
)


class ChannelSensor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sensor_id: NonEmptyStr


class SensorConfiguration(BaseModel):
    """A holder layout: which sensor is connected to which hardware channel."""

    model_config = ConfigDict(extra="forbid")

    configuration_id: NonEmptyStr
    configuration_name: NonEmptyStr
    channels: Annotated[dict[ChannelNumber, ChannelSensor], Field(min_length=1)] | None = None


class SensorFile(BaseModel):
    """The content of ``sensors.yaml`` (the ``info`` header is checked by the
    configuration upload, not here, so a file without one still works)."""

    model_config = ConfigDict(extra="forbid")

    info: Any = Field(None, exclude=True)
    sensors: Annotated[list[Sensor], Field(min_length=1)]
    sensor_configurations: list[SensorConfiguration] = Field(default_factory=list)
    # Missing means "" (the client then picks the first configuration); an
    # explicit null means the first configuration's id.
    default_configuration_id: Annotated[str, Field(strict=True)] | None = ""

    @model_validator(mode="after")
    def _resolve_default(self) -> SensorFile:
        if self.default_configuration_id is None:
            first = self.sensor_configurations[0] if self.sensor_configurations else None
            self.default_configuration_id = first.configuration_id if first else ""
        return self

    def sensor(self, sensor_id: str) -> Sensor | None:
        return next((s for s in self.sensors if s.sensor_id == sensor_id), None)

    @property
    def default_configuration(self) -> SensorConfiguration | None:
        """The configuration named by ``default_configuration_id``, else the first."""
        for configuration in self.sensor_configurations:
            if configuration.configuration_id == self.default_configuration_id:
                return configuration
        return self.sensor_configurations[0] if self.sensor_configurations else None

    def channel_sensors(self, configuration: SensorConfiguration) -> dict[int, Sensor]:
        resolved = {}
        for channel, reference in (configuration.channels or {}).items():
            sensor = self.sensor(reference.sensor_id)
            if sensor is not None:  # guaranteed by parse_sensor_file
                resolved[channel] = sensor
        return resolved


def _reference_problems(data: Any) -> list[Problem]:
    """Cross-entry rules pydantic cannot express per field: unique ids and
    references that exist. Works on the raw data so these problems are reported
    together with any type errors."""
    if not isinstance(data, dict):
        return []
    problems: list[Problem] = []
    sensor_ids: set[str] = set()
    sensors = data.get("sensors")
    if isinstance(sensors, list):
        for index, entry in enumerate(sensors):
            sensor_id = entry.get("sensor_id") if isinstance(entry, dict) else None
            if isinstance(sensor_id, str) and sensor_id.strip():
                if sensor_id in sensor_ids:
                    problems.append(
                        Problem(
                            ("sensors", index, "sensor_id"), f"duplicate sensor_id '{sensor_id}'"
                        )
                    )
                sensor_ids.add(sensor_id)
    configuration_ids: set[str] = set()
    configurations = data.get("sensor_configurations")
    if isinstance(configurations, list):
        for index, entry in enumerate(configurations):
            if not isinstance(entry, dict):
                continue
            configuration_id = entry.get("configuration_id")
            if isinstance(configuration_id, str) and configuration_id.strip():
                if configuration_id in configuration_ids:
                    problems.append(
                        Problem(
                            ("sensor_configurations", index, "configuration_id"),
                            f"duplicate configuration_id '{configuration_id}'",
                        )
                    )
                configuration_ids.add(configuration_id)
            channels = entry.get("channels")
            if not isinstance(channels, dict) or not isinstance(sensors, list):
                continue
            for channel, reference in channels.items():
                sensor_id = reference.get("sensor_id") if isinstance(reference, dict) else None
                if isinstance(sensor_id, str) and sensor_id.strip() and sensor_id not in sensor_ids:
                    problems.append(
                        Problem(
                            ("sensor_configurations", index, "channels", channel, "sensor_id"),
                            f"unknown sensor_id '{sensor_id}'",
                        )
                    )
    default_id = data.get("default_configuration_id")
    if (
        isinstance(default_id, str)
        and default_id
        and isinstance(configurations, list)
        and default_id not in configuration_ids
    ):
        problems.append(
            Problem(("default_configuration_id",), f"unknown configuration '{default_id}'")
        )
    return problems


def parse_sensor_file(data: Any) -> SensorFile:
    """Validate the content of ``sensors.yaml``.

    :raises DocumentInvalid: with every problem found (paths, no lines).
    """
    problems: list[Problem] = []
    model: SensorFile | None = None
    try:
        model = SensorFile.model_validate(data)
    except ValidationError as error:
        problems.extend(problems_from_validation_error(error))
    problems.extend(_reference_problems(data))
    if problems or model is None:
        raise DocumentInvalid(problems)
    return model


class SensorConfigurationInfo(BaseModel):
    configuration_id: str
    configuration_name: str
    channels: dict[int, Sensor] = Field(
        description="Sensor per hardware channel number (JSON object keys are strings)."
    )


class AvailableSensorInformation(BaseModel):
    """Response of ``GET /sensor``."""

    sensors: list[Sensor]
    configurations: list[SensorConfigurationInfo]
    default_configuration_id: str = Field(
        description="Id of the configuration to preselect; empty means the first."
    )

    @classmethod
    def from_file(cls, sensor_file: SensorFile) -> AvailableSensorInformation:
        return cls(
            sensors=sensor_file.sensors,
            configurations=[
                SensorConfigurationInfo(
                    configuration_id=configuration.configuration_id,
                    configuration_name=configuration.configuration_name,
                    channels=sensor_file.channel_sensors(configuration),
                )
                for configuration in sensor_file.sensor_configurations
            ],
            default_configuration_id=sensor_file.default_configuration_id or "",
        )
