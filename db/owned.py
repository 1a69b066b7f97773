"""The one way to read an owner's row by id: another owner's id answers exactly like a missing one."""

from __future__ import annotations

from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from core.errors import NotFound


class OwnedRow(Protocol):
    @property
    def owner_id(self) -> str: ...


RowT = TypeVar("RowT", bound=OwnedRow)


def get_owned(db: Session, model: type[RowT], *, owner_id: str, row_id: str, what: str) -> RowT:
    """The row of `model` with this id if `owner_id` owns it, else NotFound naming `what`."""
    row = db.get(model, row_id)
    if row is None or row.owner_id != owner_id:
        raise NotFound(f"no {what} with id {row_id!r}")
    return row
