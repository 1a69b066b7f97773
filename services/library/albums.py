"""Albums: named, ordered sets of the owner's photos. Removing a photo or deleting an album never
deletes a photo; trashed photos stay members (they come back with their albums) but are not shown."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import Invalid, NotFound
from core.pagination import decode_cursor, encode_cursor
from db.models import Album, AlbumPhoto, Photo
from services.photos.filters import PhotoFilters
from services.photos.service import get_photos, list_photos
from services.search.documents import bump_version

ALBUM_SORTS = ("manual", "taken_at")


@dataclass
class AlbumStats:
    photo_count: int = 0
    taken_from: datetime | None = None
    taken_to: datetime | None = None
    first_photo_id: str | None = None


def get_album(db: Session, *, owner_id: str, album_id: str) -> Album:
    album = db.get(Album, album_id)
    if album is None or album.owner_id != owner_id:
        raise NotFound(f"no album with id {album_id!r}")
    return album


def _check_cover(db: Session, owner_id: str, photo_id: str | None) -> None:
    if photo_id is not None and not get_photos(db, owner_id=owner_id, photo_ids=[photo_id]):
        raise NotFound(f"no photo with id {photo_id!r}", errors=[{"field": "cover_photo_id"}])


def create_album(db: Session, *, owner_id: str, fields: dict[str, Any]) -> Album:
    _check_cover(db, owner_id, fields.get("cover_photo_id"))
    album = Album(owner_id=owner_id, **fields)
    db.add(album)
    db.commit()
    return album


def update_album(db: Session, *, owner_id: str, album_id: str, changes: dict[str, Any]) -> Album:
    album = get_album(db, owner_id=owner_id, album_id=album_id)
    if "cover_photo_id" in changes:
        _check_cover(db, owner_id, changes["cover_photo_id"])
    order = changes.pop("photo_order", None)
    for name, value in changes.items():
        if name == "name" and value is None:
            raise Invalid("an album needs a name", errors=[{"field": "name"}])
        setattr(album, name, value)
    if order is not None:
        _set_order(db, album, order)
    db.commit()
    return album


def _member_ids(db: Session, album_id: str) -> list[str]:
    return list(db.scalars(select(AlbumPhoto.photo_id).where(AlbumPhoto.album_id == album_id)))


def _set_order(db: Session, album: Album, order: list[str]) -> None:
    """The given photos first, in that order; members not named keep their relative order after them."""
    members = {
        row.photo_id: row for row in db.scalars(select(AlbumPhoto).where(AlbumPhoto.album_id == album.id))
    }
    unknown = [pid for pid in order if pid not in members]
    if unknown:
        raise Invalid(
            f"photo {unknown[0]!r} is not in this album",
            errors=[{"field": "photo_order", "photo_id": pid} for pid in unknown[:50]],
        )
    named = list(dict.fromkeys(order))
    rest = sorted((row for pid, row in members.items() if pid not in set(named)), key=lambda r: r.position)
    for position, row in enumerate([*(members[pid] for pid in named), *rest]):
        row.position = position
    album.sort = "manual"


def delete_album(db: Session, *, owner_id: str, album_id: str) -> None:
    album = get_album(db, owner_id=owner_id, album_id=album_id)
    db.delete(album)  # memberships go with it (ON DELETE CASCADE); photos stay
    bump_version(db, owner_id)
    db.commit()


def list_albums(
    db: Session, *, owner_id: str, limit: int, cursor: str | None
) -> tuple[list[Album], str | None]:
    """The owner's albums by name."""
    query = select(Album).where(Album.owner_id == owner_id)
    if cursor:
        name, last_id = decode_cursor(cursor, (str, str))
        query = query.where(
            (func.lower(Album.name) > str(name))
            | ((func.lower(Album.name) == str(name)) & (Album.id > str(last_id)))
        )
    rows = list(db.scalars(query.order_by(func.lower(Album.name), Album.id).limit(limit + 1)))
    page = rows[:limit]
    next_cursor = encode_cursor([page[-1].name.lower(), page[-1].id]) if len(rows) > limit else None
    return page, next_cursor


def album_stats(db: Session, album_ids: list[str]) -> dict[str, AlbumStats]:
    """Photo count and capture-date range of each album, counting photos outside the trash, in one query."""
    stats = {album_id: AlbumStats() for album_id in album_ids}
    if not album_ids:
        return stats
    rows = db.execute(
        select(AlbumPhoto.album_id, func.count(), func.min(Photo.taken_at), func.max(Photo.taken_at))
        .join(Photo, Photo.id == AlbumPhoto.photo_id)
        .where(AlbumPhoto.album_id.in_(album_ids), Photo.trashed_at.is_(None))
        .group_by(AlbumPhoto.album_id)
    )
    for album_id, count, first, last in rows:
        stats[album_id] = AlbumStats(photo_count=int(count), taken_from=first, taken_to=last)
    return stats


def add_photos(db: Session, *, owner_id: str, album_id: str, photo_ids: list[str]) -> int:
    album = get_album(db, owner_id=owner_id, album_id=album_id)
    added = add_to_album(db, album, photo_ids)
    db.commit()
    return added


def add_to_album(db: Session, album: Album, photo_ids: list[str]) -> int:
    """Append the photos (already checked to be the owner's) not yet in the album, in the caller's
    transaction; answers how many were new."""
    present = set(_member_ids(db, album.id))
    new = [pid for pid in dict.fromkeys(photo_ids) if pid not in present]
    last = db.scalar(select(func.max(AlbumPhoto.position)).where(AlbumPhoto.album_id == album.id))
    start = -1 if last is None else int(last)
    db.add_all(
        AlbumPhoto(album_id=album.id, photo_id=pid, position=start + 1 + i) for i, pid in enumerate(new)
    )
    if new:  # album filters see the change: cached overviews of this owner are stale
        bump_version(db, album.owner_id)
    return len(new)


def remove_photos(db: Session, *, owner_id: str, album_id: str, photo_ids: list[str]) -> int:
    album = get_album(db, owner_id=owner_id, album_id=album_id)
    removed = remove_from_album(db, album, photo_ids)
    db.commit()
    return removed


def remove_from_album(db: Session, album: Album, photo_ids: list[str]) -> int:
    rows = list(
        db.scalars(
            select(AlbumPhoto).where(AlbumPhoto.album_id == album.id, AlbumPhoto.photo_id.in_(photo_ids))
        )
    )
    for row in rows:
        db.delete(row)
    if rows:
        bump_version(db, album.owner_id)
    return len(rows)


def album_photos(
    db: Session, *, owner_id: str, album_id: str, limit: int, cursor: str | None
) -> tuple[list[Photo], str | None]:
    """The album's photos in album order (its manual order, or by capture time); like every list,
    without trashed or archived photos."""
    album = get_album(db, owner_id=owner_id, album_id=album_id)
    if album.sort == "taken_at":
        filters = PhotoFilters(album=album.id)
        return list_photos(
            db, owner_id=owner_id, filters=filters, sort="taken_at", limit=limit, cursor=cursor
        )
    query = (
        select(Photo, AlbumPhoto.position)
        .join(AlbumPhoto, AlbumPhoto.photo_id == Photo.id)
        .where(
            AlbumPhoto.album_id == album.id,
            Photo.owner_id == owner_id,
            Photo.trashed_at.is_(None),
            Photo.archived.is_(False),
        )
    )
    if cursor:
        position, last_id = decode_cursor(cursor, (int, str))
        if not isinstance(position, int):
            raise Invalid("cursor does not belong to this album", errors=[{"field": "cursor"}])
        query = query.where(
            (AlbumPhoto.position > position) | ((AlbumPhoto.position == position) & (Photo.id > str(last_id)))
        )
    rows = db.execute(query.order_by(AlbumPhoto.position, Photo.id).limit(limit + 1)).all()
    page = [row[0] for row in rows[:limit]]
    next_cursor = encode_cursor([rows[limit - 1][1], page[-1].id]) if len(rows) > limit else None
    return page, next_cursor
