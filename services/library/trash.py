"""The trash: a deleted photo is hidden everywhere but kept whole (tags, faces, names, albums, bytes)
until it is restored, emptied, or purged SHOEBOX_TRASH_DAYS after it was trashed."""

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import NotFound
from core.events import photos_changed, photos_deleted
from core.pagination import decode_cursor, encode_cursor
from core.storage import BlobStore
from db.models import Photo
from db.types import utcnow
from services.jobs.service import JobContext
from services.photos.service import purge_photos

log = logging.getLogger(__name__)

# Photos purged per transaction by the maintenance step, so one pass never holds a long lock.
PURGE_BATCH = 500


def _owned(db: Session, owner_id: str, photo_ids: list[str], *, trashed: bool) -> list[Photo]:
    """The owner's photos among these ids that are (or are not) in the trash; NotFound names the rest."""
    wanted = list(dict.fromkeys(photo_ids))
    state = Photo.trashed_at.is_not(None) if trashed else Photo.trashed_at.is_(None)
    rows = list(db.scalars(select(Photo).where(Photo.owner_id == owner_id, Photo.id.in_(wanted), state)))
    found = {row.id for row in rows}
    missing = [pid for pid in wanted if pid not in found]
    if missing:
        where = "in the trash" if trashed else "outside the trash"
        raise NotFound(
            f"no photo with id {missing[0]!r} {where}", errors=[{"photo_id": pid} for pid in missing[:50]]
        )
    return rows


def move_to_trash(db: Session, owner_id: str, photos: list[Photo]) -> None:
    """Trash these photos in the caller's transaction: they leave the search index at once."""
    now = utcnow()
    for photo in photos:
        photo.trashed_at = now
    photos_deleted(db, owner_id, [photo.id for photo in photos])


def take_out_of_trash(db: Session, owner_id: str, photos: list[Photo]) -> None:
    """Restore in the caller's transaction: nothing was removed, so the photo comes back whole."""
    for photo in photos:
        photo.trashed_at = None
    photos_changed(db, owner_id, [photo.id for photo in photos])


def trash_photo(db: Session, *, owner_id: str, photo_id: str) -> None:
    photo = db.get(Photo, photo_id)
    if photo is None or photo.owner_id != owner_id:
        raise NotFound(f"no photo with id {photo_id!r}")
    if photo.trashed_at is None:
        move_to_trash(db, owner_id, [photo])
        db.commit()


def restore_photos(db: Session, *, owner_id: str, photo_ids: list[str]) -> list[Photo]:
    photos = _owned(db, owner_id, photo_ids, trashed=True)
    take_out_of_trash(db, owner_id, photos)
    db.commit()
    return photos


def list_trash(
    db: Session, *, owner_id: str, limit: int, cursor: str | None
) -> tuple[list[Photo], str | None]:
    """Trashed photos, most recently trashed first."""
    query = select(Photo).where(Photo.owner_id == owner_id, Photo.trashed_at.is_not(None))
    if cursor:
        trashed_at, last_id = decode_cursor(cursor, (str, str))
        try:
            bound = datetime.fromisoformat(str(trashed_at))
        except ValueError:
            bound = None
        if bound is None or not isinstance(last_id, str):
            raise NotFound("cursor does not belong to the trash")
        query = query.where(
            or_(Photo.trashed_at < bound, and_(Photo.trashed_at == bound, Photo.id < last_id))
        )
    rows = list(db.scalars(query.order_by(Photo.trashed_at.desc(), Photo.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit and page[-1].trashed_at is not None:
        next_cursor = encode_cursor([page[-1].trashed_at.isoformat(), page[-1].id])
    return page, next_cursor


def empty_trash(db: Session, store: BlobStore, *, owner_id: str, photo_ids: list[str] | None) -> int:
    """Purge the given trashed photos (or all of them) now; bytes go when nothing else uses them."""
    if photo_ids is not None:
        photos = _owned(db, owner_id, photo_ids, trashed=True)
    else:
        photos = list(
            db.scalars(select(Photo).where(Photo.owner_id == owner_id, Photo.trashed_at.is_not(None)))
        )
    return purge_photos(db, store, photos)


def purge_expired(db: Session, store: BlobStore, settings: Settings) -> int:
    """Purge every owner's photos trashed more than `trash_days` ago."""
    cutoff = utcnow() - timedelta(days=settings.trash_days)
    purged = 0
    while True:
        photos = list(
            db.scalars(
                select(Photo)
                .where(Photo.trashed_at.is_not(None), Photo.trashed_at < cutoff)
                .limit(PURGE_BATCH)
            )
        )
        if not photos:
            return purged
        purged += purge_photos(db, store, photos)


def purge_task(context: JobContext) -> None:
    """The job runner's maintenance step for the trash."""
    with context.sessions() as db:
        purged = purge_expired(db, context.store, context.settings)
    if purged:
        log.info("trash: %d photos purged after %d days", purged, context.settings.trash_days)
