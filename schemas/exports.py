"""Export request and response models."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from db.enums import ExportState
from schemas.common import MAX_IDS, Id, RequestModel
from services.photos.filters import PhotoFilters


class ExportSearch(PhotoFilters):
    """The same selection as the search and photo filters, plus the search words."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(default=None, max_length=500)

    def filters(self) -> PhotoFilters:
        return PhotoFilters.model_validate(self.model_dump(exclude={"q"}))


class ExportCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"photo_ids": ["3f2a...", "9b1c..."]},
                {"search": {"q": "beach", "taken_after": "2014-01-01T00:00:00", "people": ["7d4e..."]}},
            ]
        }
    )

    photo_ids: list[Id] | None = Field(default=None, min_length=1, max_length=MAX_IDS)
    search: ExportSearch | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> "ExportCreate":
        if (self.photo_ids is None) == (self.search is None):
            raise ValueError("give exactly one of photo_ids or search")
        return self


class Export(BaseModel):
    id: str
    state: ExportState
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
    search: dict[str, Any] | None = Field(
        default=None,
        description="what the photos were chosen by when it was a search: the filters and `q` that were "
        "set; null when they were chosen by `photo_ids`",
    )
