"""Shapes shared by every domain: problems and pages."""

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field


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
