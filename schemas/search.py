"""Search request and response models (SPEC section 5: search, by-image, similar, duplicates)."""

from enum import StrEnum

from pydantic import BaseModel, Field

from schemas.photos import Photo


class MatchField(StrEnum):
    """Where a search hit matched. A closed set, so generated SDKs get an enum; a new kind of evidence in
    services/search must be added here too (a value outside it fails response validation)."""

    tag = "tag"
    object = "object"
    label = "label"
    category = "category"
    person = "person"
    caption = "caption"
    place = "place"
    date = "date"
    camera = "camera"
    filename = "filename"
    content = "content"
    looks_like = "looks_like"
    image = "image"


class BestBy(StrEnum):
    quality_score = "quality_score"
    resolution_sharpness = "resolution_sharpness"


class Match(BaseModel):
    """One reason a photo came back."""

    field: MatchField = Field(
        description="where it matched: tag (user tag), object, label, category, person, caption, place, "
        "date, camera, filename, content (the photo's content as a whole, by meaning), looks_like (what "
        "the photo looks like, by the learned alignment of photos and sentences: `looks like: 0.41`) "
        "or image"
    )
    value: str = Field(description="the photo's value that matched, e.g. the tag name or the place")
    query: str | None = Field(
        default=None, description="the query word (or whole query) it matched; null for image search"
    )
    similarity: float | None = Field(
        default=None, description="cosine similarity when the match is by meaning or by image"
    )
    weight: float = Field(description="how much this match counted, for ordering the reasons")


class SearchHit(BaseModel):
    photo: Photo
    score: float = Field(description="relevance; higher is better, comparable within one result list")
    matched: list[Match] = Field(default_factory=list)


class SearchPage(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None = None


class DuplicateGroup(BaseModel):
    photos: list[Photo] = Field(description="the near-duplicates, best shot first")
    best_photo_id: str
    size: int
    similarity: float = Field(description="lowest image-embedding cosine between linked photos of the group")
    best_by: BestBy = Field(description="how the best shot was chosen: quality_score or resolution_sharpness")


class DuplicatePage(BaseModel):
    items: list[DuplicateGroup]
    next_cursor: str | None = None
