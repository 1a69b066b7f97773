"""Shapes shared by every domain: problems and pages."""

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field, StringConstraints

# Input limits of the contract (openapi.md, "Limits"). Ids are UUIDs: nothing longer is an id of
# ours, and a body naming more than MAX_IDS of them is refused before any lookup.
MAX_ID_LENGTH = 64
MAX_IDS = 10_000
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=["https://shoebox.dev/problems/not-found"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
