"""Request and response bodies of the measurement endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from icoapi.core.disk import DiskSpace
from icoapi.system.schemas import ADCValues, MacAddress


class Quantity(BaseModel):
    value: float | int
    unit: str


class Metadata(BaseModel):
    """Pre- or post-measurement metadata as the web client sends it."""

    version: str = Field(examples=["0.0.1"])
    profile: str = Field(examples=["milling"])
    parameters: dict[str, Quantity | Any] = Field(default_factory=dict)


class ChannelInstruction(BaseModel):
    """Which hardware sensor a measurement channel records (0 disables it) and which
    sensor definition converts its values."""

    channel_number: int = Field(ge=0, le=255)
    sensor_id: str | None = None


class MeasurementInstructions(BaseModel):
    """Body of ``POST /measurement/start``. Keys without a default are required,
    even where ``null`` is allowed (as upstream)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "milling",
                    "mac_address": "08-6B-D7-01-DE-81",
                    "time": 10,
                    "first": {"channel_number": 1, "sensor_id": "acc100g_01"},
                    "second": {"channel_number": 0, "sensor_id": None},
                    "third": {"channel_number": 0, "sensor_id": None},
                    "ift_requested": False,
                    "ift_channel": "first",
                    "ift_window_width": 150,
                    "adc": {
                        "prescaler": 2,
                        "acquisition_time": 8,
                        "oversampling_rate": 64,
                        "reference_voltage": 3.3,
                    },
                    "meta": {"version": "0.0.1", "profile": "milling", "parameters": {}},
                    "wait_for_post_meta": False,
                    "disconnect_after_measurement": False,
                }
            ]
        }
    )

    name: str | None
    mac_address: MacAddress
    time: Annotated[int, Field(gt=0)] | None = Field(
        description="Duration in whole seconds; null runs until stop."
    )
    first: ChannelInstruction
    second: ChannelInstruction
    third: ChannelInstruction
    ift_requested: bool
    ift_channel: Literal["first", "second", "third"] | str
    ift_window_width: int = Field(description="IFT window in milliseconds (5–1000).")
    adc: ADCValues | None
    meta: Metadata | None
    wait_for_post_meta: bool = False
    disconnect_after_measurement: bool = False


class PendingPostMeta(BaseModel):
    """A finished measurement that waits for its post-measurement metadata."""

    name: str = Field(description="The measurement's name.")
    file: str = Field(description="Its (closed) measurement file.")
    since: str = Field(description="When the wait began (UTC, ISO 8601).")
    until: str = Field(
        description="When the file is finished without the metadata at the latest (UTC, ISO 8601)."
    )


class MeasurementStatus(BaseModel):
    running: bool = False
    name: str | None = None
    start_time: str | None = None
    tool_name: str | None = None
    instructions: MeasurementInstructions | None = None
    last_error: str | None = Field(
        default=None, description="Why the previous measurement ended early, if it did."
    )
    post_meta_pending: PendingPostMeta | None = Field(
        default=None,
        description="Set while a finished measurement waits for POST /measurement/post_meta "
        "(POST /measurement/stop finishes it without); no new measurement starts meanwhile.",
    )
    disk: DiskSpace | None = Field(
        default=None,
        description="Free space on the measurement volume, the reserve kept and the "
        "seconds that can still be recorded.",
    )


class ControlResponse(BaseModel):
    message: str
    data: MeasurementStatus


class MetadataSummary(BaseModel):
    """Metadata without its values (pictures can make it megabytes)."""

    version: str
    profile: str
    parameter_names: list[str] = Field(
        description="The parameters given; their values (pictures included) are in the file."
    )


class InstructionsSummary(MeasurementInstructions):
    """The instructions of the running measurement without the metadata values:
    pictures in the metadata would make every state push as large as they are."""

    model_config = ConfigDict(json_schema_extra=None)

    meta: MetadataSummary | None  # type: ignore[assignment]


class MeasurementStatusSummary(BaseModel):
    """:class:`MeasurementStatus` with :class:`InstructionsSummary` instructions:
    what ``GET /measurement`` and every ``/state`` push show."""

    running: bool = False
    name: str | None = None
    start_time: str | None = None
    tool_name: str | None = None
    instructions: InstructionsSummary | None = None
    last_error: str | None = None
    post_meta_pending: PendingPostMeta | None = None

    @classmethod
    def of(cls, status: MeasurementStatus) -> MeasurementStatusSummary:
        instructions = None
        if status.instructions is not None:
            meta = status.instructions.meta
            summary = (
                None
                if meta is None
                else MetadataSummary(
                    version=meta.version,
                    profile=meta.profile,
                    parameter_names=list(meta.parameters),
                )
            )
            instructions = InstructionsSummary.model_validate(
                {**status.instructions.model_dump(exclude={"meta"}), "meta": summary}
            )
        return cls(
            running=status.running,
            name=status.name,
            start_time=status.start_time,
            tool_name=status.tool_name,
            instructions=instructions,
            last_error=status.last_error,
            post_meta_pending=status.post_meta_pending,
        )


class MeasurementOverview(MeasurementStatusSummary):
    """What ``GET /measurement`` answers: the status summary and the disk space
    (``/state`` carries the disk space beside its summary)."""

    disk: DiskSpace | None = Field(
        default=None,
        description="Free space on the measurement volume, the reserve kept and the "
        "seconds that can still be recorded.",
    )

    @classmethod
    def of(cls, status: MeasurementStatus) -> MeasurementOverview:
        summary = MeasurementStatusSummary.of(status)
        return cls(**dict(summary), disk=status.disk)
