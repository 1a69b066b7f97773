"""Face and person models."""

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from db.enums import PersonSource


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


class FaceLabel(BaseModel):
    face_ids: list[str] = Field(min_length=1, max_length=1000)
    person_id: str | None = None
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
    created_at: datetime


class PersonCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class PersonPatch(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class PersonMerge(BaseModel):
    from_ids: list[str] = Field(min_length=1, max_length=100)
