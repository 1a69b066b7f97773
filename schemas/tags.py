"""Tag request and response models."""

from pydantic import BaseModel, Field

from db.enums import TagState
from schemas.common import RequestModel
from schemas.photos import Photo, Tag


class TagCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100, examples=["grandma"])


class TagStateChange(RequestModel):
    state: TagState = Field(examples=["confirmed"])


class TagCount(BaseModel):
    name: str
    count: int = Field(description="photos carrying the tag in any kind")
    kinds: dict[str, int] = Field(description="photo count per kind: object, label, category, user")


class TagVocabulary(BaseModel):
    items: list[TagCount]


class ReviewItem(BaseModel):
    tag: Tag
    photo: Photo
