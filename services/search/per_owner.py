"""In-memory structures kept per owner by a process (search indexes, overview columns)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from sqlalchemy.orm import Session


class Refreshable(Protocol):
    def refresh(self, db: Session) -> None: ...


T = TypeVar("T", bound=Refreshable)


class PerOwner(Generic[T]):
    """The structures of the `max_owners` owners used last (the oldest is dropped first), each built
    on first use and brought up to date with the database on every use."""

    def __init__(self, build: Callable[[str], T], max_owners: int) -> None:
        self._build = build
        self._max_owners = max_owners
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, db: Session, owner_id: str) -> T:
        with self._lock:
            item = self._items.get(owner_id)
            if item is None:
                item = self._items[owner_id] = self._build(owner_id)
            self._items.move_to_end(owner_id)
            while len(self._items) > self._max_owners:
                self._items.popitem(last=False)
        item.refresh(db)
        return item
