"""Face and person models."""

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from db.enums import PersonSource
from schemas.common import Id, RequestModel


class PersonRef(BaseModel):
    id: str
    name: str


class FaceSuggestion(BaseModel):
    person: PersonRef
    confidence: float = Field(description="the model's probability that this is the person")


class Face(BaseModel):
    id: str
    photo_id: str
    bbox: list[float] = Field(description="[x, y, w, h] normalised to the upright image")
    landmarks: list[list[float]] = Field(description="5 points (eyes, nose, mouth corners), normalised")
    detection_score: float
    person: PersonRef | None
    person_source: PersonSource | None = Field(
        description="user: a person named it (or cleared it); model: the classifier's suggestion"
    )
    person_confidence: float | None
    suggestion: FaceSuggestion | None = Field(
        default=None,
        description=(
            "a plausible match the model does not assert (a look-alike, a relative, a poor photo): "
            "not counted as that person's face until a user confirms it with POST /v1/faces/label"
        ),
    )
    recognisable: bool = Field(description="false: too small or blurred to recognise; not used for training")
    thumbnail_url: str | None = Field(
        default=None, description="signed, short-lived URL of the face crop: works in <img src> without a key"
    )


class FaceLabel(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"face_ids": ["5c0d..."], "name": "Alice"},
                {"face_ids": ["5c0d..."], "person_id": "7d4e..."},
            ]
        }
    )

    face_ids: list[Id] = Field(min_length=1, max_length=1000)
    person_id: Id | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_target(self) -> "FaceLabel":
        if (self.person_id is None) == (self.name is None):
            raise ValueError("give exactly one of person_id or name")
        return self


class FaceCluster(BaseModel):
    face_ids: list[str]
    size: int


class FaceClusters(BaseModel):
    items: list[FaceCluster]


class Person(BaseModel):
    id: str
    name: str
    face_count: int
    labeled_count: int = Field(description="faces a user named as this person")
    photo_count: int
    cover_face_id: str | None = Field(
        description="the face shown for the person: the one chosen by PATCH, else their best labelled face"
    )
    thumbnail_url: str | None = Field(
        default=None, description="signed, short-lived URL of the cover face's crop (works in <img src>)"
    )
    hidden: bool = Field(description="hidden people are left out of the people list and facets")
    birth_date: date | None
    created_at: datetime


class PersonCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200, examples=["Alice"])


class PersonPatch(RequestModel):
    """Only the fields sent change; `null` clears the cover (back to automatic) or the birth date."""

    name: str | None = Field(default=None, min_length=1, max_length=200, examples=["Alice Smith"])
    cover_face_id: Id | None = Field(default=None, description="one of this person's faces")
    hidden: bool | None = None
    birth_date: date | None = Field(default=None, examples=["1990-04-21"])

    @model_validator(mode="after")
    def _something_to_change(self) -> "PersonPatch":
        if not self.model_fields_set:
            raise ValueError("send at least one of name, cover_face_id, hidden, birth_date")
        return self


class PersonMerge(RequestModel):
    from_ids: list[Id] = Field(min_length=1, max_length=100)
