"""Bodies of the log endpoints."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LogFileInfo(BaseModel):
    name: str = Field(examples=["icodaq.log"])
    size: int = Field(description="Size in bytes.")
    first_timestamp: str | None = Field(
        description="Time of the first log line (ISO 8601); null if none was found."
    )
    last_timestamp: str | None = Field(
        description="Time of the last log line (ISO 8601); null if none was found."
    )


class LogListResponse(BaseModel):
    files: list[LogFileInfo]
    directory: str = Field(description="Folder that holds the log files.")
    max_bytes: int = Field(description="Size at which the log file is rotated.")
    backup_count: int = Field(description="Number of rotated files kept.")


class LogView(BaseModel):
    filename: str
    content: str
    truncated: bool = Field(
        False,
        description="True if only the end of the file is shown because it exceeds the "
        "view limit; the content then starts with a notice line.",
    )
