"""Job models."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from db.enums import JobState, JobType


class JobCreate(BaseModel):
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
