"""Job models."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from db.enums import JobState, JobType
from schemas.common import MAX_IDS, Id

# The types a client may start; the others (export) belong to a resource that starts them itself.
ClientJobType = Literal[JobType.analyze, JobType.recognize, JobType.verify]


class JobCreate(BaseModel):
    type: ClientJobType = Field(examples=["analyze"], description="analyze, recognize or verify")
    photo_ids: list[Id] | None = Field(
        default=None, max_length=MAX_IDS, description="default: every photo of the owner"
    )


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
