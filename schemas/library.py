"""Library request and response models: albums, trash, bulk edits, timeline, places, map, facets."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.exports import ExportSearch
from schemas.jobs import Job
from services.photos.selection import MAX_SELECTION


class PhotoSelection(BaseModel):
    """Photos by id, or by a search (the photo filters plus optional search words `q`)."""

    model_config = ConfigDict(extra="forbid")

    photo_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_SELECTION)
    search: ExportSearch | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> "PhotoSelection":
        if (self.photo_ids is None) == (self.search is None):
            raise ValueError("give exactly one of photo_ids or search")
        return self


class Album(BaseModel):
    id: str
    name: str
    description: str | None
    cover_photo_id: str | None = Field(description="the chosen cover photo, if any")
    sort: Literal["manual", "taken_at"]
    photo_count: int
    taken_from: datetime | None = Field(description="earliest capture time of its photos")
    taken_to: datetime | None = Field(description="latest capture time of its photos")
    created_at: datetime
    updated_at: datetime


class AlbumCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    cover_photo_id: str | None = None
    sort: Literal["manual", "taken_at"] = "manual"


class AlbumPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    cover_photo_id: str | None = None
    sort: Literal["manual", "taken_at"] | None = None
    photo_order: list[str] | None = Field(
        default=None,
        max_length=MAX_SELECTION,
        description="photo ids in the wanted order (the rest follow); sets sort to manual",
    )


class AlbumPhotosChanged(BaseModel):
    album: Album
    changed: int = Field(description="photos added (or removed) by this call")


class TrashRestore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    photo_ids: list[str] = Field(min_length=1, max_length=MAX_SELECTION)


class TrashEmptied(BaseModel):
    purged: int


class BulkOperations(BaseModel):
    model_config = ConfigDict(extra="forbid")

    favorite: bool | None = None
    rating: int | None = Field(default=None, ge=0, le=5)
    archived: bool | None = None
    rotation: Literal[0, 90, 180, 270] | None = None
    caption: str | None = Field(default=None, max_length=2000)
    add_tags: list[str] = Field(default_factory=list, max_length=100, description="user tags to add")
    remove_tags: list[str] = Field(default_factory=list, max_length=100)
    confirm_tags: list[str] = Field(default_factory=list, max_length=100, description="model tags to confirm")
    reject_tags: list[str] = Field(default_factory=list, max_length=100, description="model tags to reject")
    add_to_album: str | None = Field(default=None, description="album id")
    remove_from_album: str | None = Field(default=None, description="album id")
    trash: bool = False
    restore: bool = Field(default=False, description="take the selected photos (by id) out of the trash")


class BulkRequest(PhotoSelection):
    operations: BulkOperations


class BulkPhotoResult(BaseModel):
    photo_id: str
    status: Literal["updated", "unchanged", "failed"]
    notes: list[str]


class BulkResult(BaseModel):
    """Done at once (`results`), or, above the synchronous limit, started as a job (`job`)."""

    results: list[BulkPhotoResult] | None = None
    job: Job | None = None


class TimelineBucket(BaseModel):
    bucket: str | None = Field(description="`2014`, `2014-06` or `2014-06-21`; null for undated photos")
    count: int
    first_photo_id: str = Field(description="the bucket's earliest photo")


class Timeline(BaseModel):
    items: list[TimelineBucket]


class PlaceItem(BaseModel):
    city: str | None
    region: str | None
    country: str | None
    count: int
    photo_id: str = Field(description="a representative photo")


class MapCluster(BaseModel):
    lat: float = Field(description="centre: mean position of its photos")
    lon: float
    count: int
    photo_id: str = Field(description="one photo of the cluster")
    bbox: list[float] = Field(description="[west, south, east, north] of its photos")


class MapClusters(BaseModel):
    items: list[MapCluster]
    zoom: int
    cell_degrees: float


class Facets(BaseModel):
    total: int = Field(description="photos passing the filters")
    tags: dict[str, list[dict[str, Any]]] = Field(description="by kind: [{value, count}]")
    people: list[dict[str, Any]] = Field(description="[{value: person id, name, count}]")
    cameras: list[dict[str, Any]]
    years: list[dict[str, Any]] = Field(description="[{value: `2014` or null, count}]")
    places: list[dict[str, Any]]
    favorite: list[dict[str, Any]]
    rating: list[dict[str, Any]]
