"""The one photo filter model: query parameters, search, exports and album selections all use it.

Bounds live here once, so every entry point refuses the same bad values with a 422 naming the
field; list filters accept `?tags=a&tags=b` and `?tags=a,b` alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

# Longest list a filter takes: enough for any real selection, small enough that a query with it
# stays one cheap indexed statement.
MAX_FILTER_VALUES = 100
# Tag names are at most 100 characters and ids 36: a longer value can match nothing.
MAX_FILTER_VALUE_LENGTH = 100


class PhotoFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    taken_after: datetime | None = Field(default=None, description="capture time at or after (camera-local)")
    taken_before: datetime | None = Field(default=None, description="capture time at or before")
    camera: str | None = Field(default=None, max_length=200, description="make or model contains")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    radius_km: float | None = Field(default=None, gt=0, le=20038)
    tags: list[str] = Field(
        default_factory=list, max_length=MAX_FILTER_VALUES, description="all of these tags"
    )
    any_tags: list[str] = Field(
        default_factory=list, max_length=MAX_FILTER_VALUES, description="any of these tags"
    )
    people: list[str] = Field(
        default_factory=list, max_length=MAX_FILTER_VALUES, description="person ids, all of"
    )
    has_faces: bool | None = None
    min_quality: float | None = Field(default=None, ge=0, le=100, description="quality score at least")
    album: str | None = Field(default=None, max_length=36, description="album id: photos in that album")
    favorite: bool | None = Field(default=None, description="favourites only (true) or none of them (false)")
    min_rating: int | None = Field(default=None, ge=0, le=5, description="rating (0-5) at least")
    archived: bool | None = Field(
        default=None, description="archived photos are left out unless true (only them) is asked for"
    )
    has_gps: bool | None = Field(default=None, description="with (true) or without (false) GPS position")
    place: str | None = Field(
        default=None, max_length=200, description="city, region or country name (case-insensitive)"
    )

    @field_validator("tags", "any_tags", "people", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        """`?tags=a&tags=b` and `?tags=a,b` mean the same; blanks are dropped."""
        if value is None:
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            return value
        return [part.strip() for item in items for part in str(item).split(",") if part.strip()]

    @field_validator("tags", "any_tags", "people")
    @classmethod
    def _short_values(cls, values: list[str]) -> list[str]:
        # After the split: a length constraint on the items would be checked on "a,b,c" as a whole.
        if any(len(value) > MAX_FILTER_VALUE_LENGTH for value in values):
            raise PydanticCustomError(
                "filters",
                "a filter value has at most {limit} characters",
                {"limit": MAX_FILTER_VALUE_LENGTH},
            )
        return values

    @model_validator(mode="after")
    def _consistent(self) -> PhotoFilters:
        geo = (self.lat, self.lon, self.radius_km)
        if any(v is not None for v in geo) and not all(v is not None for v in geo):
            missing = [n for n, v in zip(("lat", "lon", "radius_km"), geo, strict=True) if v is None]
            raise PydanticCustomError(
                "filters",
                "lat, lon and radius_km go together: {names} missing",
                {"names": ", ".join(missing), "fields": missing},
            )
        if self.taken_after and self.taken_before and self.taken_after > self.taken_before:
            raise PydanticCustomError(
                "filters", "taken_after is later than taken_before", {"fields": ["taken_after"]}
            )
        return self
