"""The timeline: photo counts per year, month or day of capture, from one grouped query."""

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from db.models import Photo
from services.photos.filters import PhotoFilters
from services.photos.service import apply_filters

Bucket = Literal["year", "month", "day"]
# strftime (SQLite) and to_char (PostgreSQL) patterns giving `2014`, `2014-06`, `2014-06-21`.
_SQLITE_FORMAT = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d"}
_POSTGRES_FORMAT = {"year": "YYYY", "month": "YYYY-MM", "day": "YYYY-MM-DD"}


@dataclass(frozen=True)
class TimelineBucket:
    bucket: str | None  # None: the photos without a capture time
    count: int
    first_photo_id: str


def bucket_of(db: Session, column: Any, bucket: Bucket) -> ColumnElement[str]:
    """The capture-time bucket label as SQL (wall time as the camera wrote it)."""
    if db.get_bind().dialect.name == "sqlite":
        return func.strftime(_SQLITE_FORMAT[bucket], column)
    return func.to_char(column, _POSTGRES_FORMAT[bucket])


def timeline(
    db: Session, *, owner_id: str, filters: PhotoFilters, bucket: Bucket, newest_first: bool = True
) -> list[TimelineBucket]:
    """Buckets newest first (or oldest first), undated photos last, each with its earliest photo."""
    label = bucket_of(db, Photo.taken_at, bucket).label("bucket")
    ranked = apply_filters(
        select(
            label,
            Photo.id.label("photo_id"),
            func.row_number().over(partition_by=label, order_by=(Photo.taken_at, Photo.id)).label("rank"),
            func.count().over(partition_by=label).label("size"),
        ).where(Photo.owner_id == owner_id),
        filters,
    ).subquery()
    order = ranked.c.bucket.desc() if newest_first else ranked.c.bucket.asc()
    rows = db.execute(
        select(ranked.c.bucket, ranked.c.size, ranked.c.photo_id)
        .where(ranked.c.rank == 1)
        .order_by(ranked.c.bucket.is_(None), order)
    )
    return [TimelineBucket(bucket=b, count=int(n), first_photo_id=pid) for b, n, pid in rows]
