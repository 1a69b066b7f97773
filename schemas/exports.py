"""Export request and response models."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator


class ExportSearch(BaseModel):
    """The same selection as the search and photo filters."""

    q: str | None = Field(default=None, max_length=500)
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    tags: list[str] = Field(default_factory=list)
    any_tags: list[str] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list)
    camera: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    radius_km: float | None = Field(default=None, gt=0)
    min_quality: float | None = Field(default=None, ge=0, le=100)
    has_faces: bool | None = None


class ExportCreate(BaseModel):
    photo_ids: list[str] | None = Field(default=None, min_length=1, max_length=100_000)
    search: ExportSearch | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> "ExportCreate":
        if (self.photo_ids is None) == (self.search is None):
            raise ValueError("give exactly one of photo_ids or search")
        return self


class Export(BaseModel):
    id: str
    state: Literal["queued", "running", "ready", "failed", "cancelled", "expired"]
    job_id: str | None
    total: int
    done: int
    failed: int
    errors: list[dict[str, Any]]
    size_bytes: int | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime
    download_url: str | None = Field(description="present once the zip is ready")
