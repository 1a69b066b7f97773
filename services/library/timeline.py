"""The timeline: photo counts per year, month or day of capture, counted on the owner's photo columns
in memory (services.search.columns), or by one grouped query where those cannot count (archived
photos, a library whose documents predate the facet keys)."""

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from db.models import Photo
from services.photos.filters import PhotoFilters
from services.photos.service import apply_filters
from services.search.columns import owner_columns

Bucket = Literal["year", "month", "day"]
# Characters of the stored capture time that make the label: SQLite keeps DATETIME as ISO text
# (`2014-06-21 10:00:00.000000`), so a prefix is the bucket, far cheaper per row than strftime().
_PREFIX = {"year": 4, "month": 7, "day": 10}
# to_char patterns giving the same labels on PostgreSQL.
_POSTGRES_FORMAT = {"year": "YYYY", "month": "YYYY-MM", "day": "YYYY-MM-DD"}


@dataclass(frozen=True)
class TimelineBucket:
    bucket: str | None  # None: the photos without a capture time
    count: int
    first_photo_id: str


def bucket_of(db: Session, column: Any, bucket: Bucket) -> ColumnElement[str]:
    """The capture-time bucket label as SQL (wall time as the camera wrote it)."""
    if db.get_bind().dialect.name == "sqlite":
        return func.substr(column, 1, _PREFIX[bucket])
    return func.to_char(column, _POSTGRES_FORMAT[bucket])


def timeline(
    db: Session, *, owner_id: str, filters: PhotoFilters, bucket: Bucket, newest_first: bool = True
) -> list[TimelineBucket]:
    """Buckets newest first (or oldest first), undated photos last, each with its earliest photo."""
    counted = owner_columns(db, owner_id).timeline(db, filters, bucket, newest_first)
    if counted is None:
        return grouped_timeline(
            db, owner_id=owner_id, filters=filters, bucket=bucket, newest_first=newest_first
        )
    return [TimelineBucket(bucket=b, count=n, first_photo_id=pid) for b, n, pid in counted]


def grouped_timeline(
    db: Session, *, owner_id: str, filters: PhotoFilters, bucket: Bucket, newest_first: bool = True
) -> list[TimelineBucket]:
    """The timeline from one grouped query over the filtered photos."""
    label = bucket_of(db, Photo.taken_at, bucket).label("bucket")
    first_photo: Any
    if db.get_bind().dialect.name == "sqlite":
        # SQLite fills a bare column of a query with one min() aggregate from the row min() picked:
        # the bucket's earliest photo, without a second pass.
        first_photo = Photo.id
    else:
        first_photo = func.array_agg(aggregate_order_by(Photo.id, Photo.taken_at, Photo.id))[1]
    grouped = select(label, func.count(), func.min(Photo.taken_at), first_photo).where(
        Photo.owner_id == owner_id
    )
    order = label.desc() if newest_first else label.asc()
    query = apply_filters(grouped, filters).group_by(label).order_by(label.is_(None), order)
    return [TimelineBucket(bucket=b, count=int(n), first_photo_id=pid) for b, n, _, pid in db.execute(query)]
