"""Job models."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from db.enums import JobState, JobType
from schemas.common import RequestModel


class JobCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "analyze"}, {"type": "recognize", "photo_ids": ["3f2a..."]}]}
    )

    type: JobType = Field(examples=["analyze"], description="analyze, recognize or verify")
    photo_ids: list[str] | None = Field(default=None, description="default: every photo of the owner")


class Job(BaseModel):
    id: str
    type: JobType
    state: JobState
    total: int
    done: int
    failed: int
    errors: list[dict[str, Any]]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
