"""A per-process cache of the library overviews (timeline, facets) keyed by the owner's change number.

Both are counts over all of the owner's photos that pass the filters, while a gallery asks for the
same few of them again and again between changes. Every change of a photo bumps the owner's change
number in the database (services.search.documents.bump_version, called by the photos_changed and
photos_deleted hooks, and by album membership changes), so an entry is used only while the number it
was computed at is still current: several API processes never serve each other's stale counts.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from sqlalchemy.orm import Session

from services.search.documents import current_version

T = TypeVar("T")
MAX_ENTRIES = 512

_entries: OrderedDict[Hashable, tuple[int, object]] = OrderedDict()
_lock = threading.Lock()


def cached(db: Session, owner_id: str, key: Hashable, compute: Callable[[], T]) -> T:
    # Read the number before computing: a change that lands meanwhile makes the entry stale at once.
    version = current_version(db, owner_id)
    full_key = (owner_id, key)
    with _lock:
        hit = _entries.get(full_key)
        if hit is not None and hit[0] == version:
            _entries.move_to_end(full_key)
            return hit[1]  # type: ignore[return-value]
    value = compute()
    with _lock:
        _entries[full_key] = (version, value)
        _entries.move_to_end(full_key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value
