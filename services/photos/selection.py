"""A selection of the owner's photos: by ids, by filters, or by a text search with filters.

Exports, albums and bulk edits all take the same selection, resolved here once.
"""

from sqlalchemy.orm import Session

from core.errors import NotFound
from services.inference.models import ModelSet
from services.photos.filters import PhotoFilters
from services.photos.service import get_photos, list_photos
from services.search.service import search_photo_ids

# Most photos one selection resolves to (one export, album change or bulk edit).
MAX_SELECTION = 100_000


def resolve_photo_ids(
    db: Session, *, owner_id: str, photo_ids: list[str] | None, filters: PhotoFilters | None
) -> list[str]:
    """Ids as given (each must be the owner's and not in the trash), or every photo passing the filters."""
    if photo_ids is not None:
        found = {p.id for p in get_photos(db, owner_id=owner_id, photo_ids=photo_ids)}
        missing = [pid for pid in photo_ids if pid not in found]
        if missing:
            raise NotFound(
                f"no photo with id {missing[0]!r}", errors=[{"photo_id": pid} for pid in missing[:50]]
            )
        return list(dict.fromkeys(photo_ids))
    assert filters is not None
    ids: list[str] = []
    cursor = None
    while True:
        rows, cursor = list_photos(
            db, owner_id=owner_id, filters=filters, sort="taken_at", limit=500, cursor=cursor
        )
        ids.extend(row.id for row in rows)
        if cursor is None or len(ids) > MAX_SELECTION:
            return ids


def select_photo_ids(
    db: Session,
    models: ModelSet,
    *,
    owner_id: str,
    photo_ids: list[str] | None,
    filters: PhotoFilters | None,
    query: str | None,
) -> list[str]:
    """The photos chosen by id, by filters, or by a text search with filters."""
    if photo_ids is None and query and query.strip():
        assert filters is not None
        return search_photo_ids(db, models, owner_id=owner_id, query=query.strip(), filters=filters)
    return resolve_photo_ids(db, owner_id=owner_id, photo_ids=photo_ids, filters=filters)
