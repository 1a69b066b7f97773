"""Job models."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from db.enums import JobState, JobType
from schemas.common import MAX_IDS, Id, RequestModel

# The types a client may start; the others (export) belong to a resource that starts them itself.
ClientJobType = Literal[JobType.analyze, JobType.recognize, JobType.verify]


class JobCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "analyze"}, {"type": "recognize", "photo_ids": ["3f2a..."]}]}
    )

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
