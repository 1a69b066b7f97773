"""Shapes shared by every domain: problems and pages."""

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Input limits of the contract (openapi.md, "Limits"). Ids are UUIDs: nothing longer is an id of
# ours, and a body naming more than MAX_IDS of them is refused before any lookup.
MAX_ID_LENGTH = 64
MAX_IDS = 10_000
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]


class ProblemError(BaseModel):
    """One detail of a problem: a field that is wrong, a file that was rejected, an id that was not
    found. Which keys are present depends on the problem; every one is optional."""

    # A rejected file's item is itself a problem (type, title, status, detail) plus its filename.
    model_config = ConfigDict(extra="allow")

    field: str | None = Field(default=None, description="the request field, dotted for nested ones")
    location: str | None = Field(default=None, description="body, query, path or header")
    message: str | None = None
    filename: str | None = Field(default=None, description="the uploaded file this item is about")
    photo_id: str | None = None
    face_id: str | None = None
    type: str | None = None
    title: str | None = None
    status: int | None = None
    detail: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=["https://shoebox.dev/problems/not-found"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemError] | None = None


class RequestModel(BaseModel):
    """Base of every JSON request body: a field the API does not know is refused (422 naming it), so a
    typo such as `photoids` never silently selects everything."""

    model_config = ConfigDict(extra="forbid")


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
