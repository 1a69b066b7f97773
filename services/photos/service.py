"""The photo library: upload, list with filters, read, update, delete. No HTTP in here."""

import io
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import NotFound, ShoeboxError, UploadRejected
from core.events import photos_changed, photos_deleted
from core.pagination import decode_cursor, encode_cursor
from core.storage import BlobStore, sha256_hex
from db.enums import UploadStatus
from db.models import AlbumPhoto, Face, Photo, PhotoTag
from db.owned import get_owned
from services.jobs.service import add_to_queued_job, job_type_names
from services.photos.filenames import display_filename
from services.photos.filters import PhotoFilters
from services.photos.images import inspect_image, load_oriented, make_thumbnail
from services.quality.enhance import enhance_low_light

log = logging.getLogger(__name__)

PhotoSort = Literal["taken_at", "-taken_at", "uploaded_at", "-uploaded_at"]
EARTH_RADIUS_KM = 6371.0088
# Enhanced derivatives are for viewing: capped so a 50 MP photo takes a second, not a minute.
ENHANCED_MAX_SIDE = 2560
# NULL capture times sort last in both directions; these stand in for them in the sort key.
_FAR_FUTURE = datetime(9999, 12, 31)
_FAR_PAST = datetime(1, 1, 1)


class UploadSource(Protocol):
    """One uploaded file as a web framework hands it over (Starlette's UploadFile fits)."""

    @property
    def filename(self) -> str | None: ...

    @property
    def file(self) -> BinaryIO: ...


@dataclass
class UploadOutcome:
    filename: str
    status: UploadStatus
    photo: Photo | None = None
    error: ShoeboxError | None = None


@dataclass
class UploadBatch:
    outcomes: list[UploadOutcome]
    # The analysis job the new photos joined (None when nothing was created or auto-analysis is off).
    job_id: str | None = None


def upload_photos(
    db: Session, store: BlobStore, settings: Settings, *, owner_id: str, files: Iterable[UploadSource]
) -> UploadBatch:
    """Store each file (validated fully before anything is written, committed on its own), one in
    memory at a time, then queue the new photos for analysis.

    Raises UploadRejected when every file was rejected: the client gets one problem naming each.
    """
    outcomes: list[UploadOutcome] = []
    for index, upload in enumerate(files):
        filename = display_filename(upload.filename or f"file{index + 1}")
        # Never more than one byte past the limit in memory (that byte is what rejects the file).
        data = upload.file.read(settings.max_upload_bytes + 1)
        try:
            outcomes.append(_upload_one(db, store, settings, owner_id, filename, data))
        except ShoeboxError as error:
            db.rollback()
            log.info("upload rejected: %s: %s", filename, error.detail)
            outcomes.append(UploadOutcome(filename=filename, status=UploadStatus.rejected, error=error))
        del data
    created = [o.photo.id for o in outcomes if o.status == "created" and o.photo is not None]
    job_id = None
    if created and settings.analyze_on_upload:
        job_id = after_upload(db, owner_id=owner_id, photo_ids=created)
    if outcomes and all(o.status == "rejected" for o in outcomes):
        errors = [o.error for o in outcomes if o.error is not None]
        statuses = {e.status for e in errors}
        raise UploadRejected(
            "; ".join(f"{o.filename}: {o.error.detail}" for o in outcomes if o.error is not None),
            errors=[{"filename": o.filename, **o.error.problem()} for o in outcomes if o.error is not None],
            status=statuses.pop() if len(statuses) == 1 else 422,
        )
    return UploadBatch(outcomes=outcomes, job_id=job_id)


def _upload_one(
    db: Session, store: BlobStore, settings: Settings, owner_id: str, filename: str, data: bytes
) -> UploadOutcome:
    info = inspect_image(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
    sha256 = sha256_hex(data)
    existing = _find_by_sha(db, owner_id, sha256)
    if existing is not None:
        if existing.trashed_at is not None:
            # Uploading a trashed photo again is the clearest "I want it back".
            existing.trashed_at = None
            photos_changed(db, owner_id, [existing.id])
            db.commit()
        return UploadOutcome(filename=filename, status=UploadStatus.duplicate, photo=existing)
    exif = info.exif
    photo = Photo(
        owner_id=owner_id,
        sha256=sha256,
        filename=filename,
        content_type=info.content_type,
        size_bytes=len(data),
        width=info.width,
        height=info.height,
        taken_at=exif.taken_at.replace(tzinfo=None) if exif.taken_at else None,
        taken_at_offset=exif.taken_at_offset,
        taken_at_source=exif.taken_at_source,
        gps_lat=exif.gps.lat if exif.gps else None,
        gps_lon=exif.gps.lon if exif.gps else None,
        gps_alt=exif.gps.alt if exif.gps else None,
        camera_make=exif.make,
        camera_model=exif.model,
        orientation=exif.orientation,
    )
    blob_existed = store.exists(sha256)
    store.put(data, sha256)
    try:
        db.add(photo)
        db.flush()  # assigns photo.id, which the change listeners need
        photos_changed(db, owner_id, [photo.id])
        db.commit()
    except IntegrityError:
        # Another request stored the same file for this owner first.
        db.rollback()
        existing = _find_by_sha(db, owner_id, sha256)
        if existing is not None:
            return UploadOutcome(filename=filename, status=UploadStatus.duplicate, photo=existing)
        raise
    except BaseException:
        db.rollback()
        if not blob_existed and not blob_in_use(db, sha256):
            store.delete(sha256)
        raise
    log.info("photo %s created for owner %s (%s, %d bytes)", photo.id, owner_id, filename, len(data))
    return UploadOutcome(filename=filename, status=UploadStatus.created, photo=photo)


def _find_by_sha(db: Session, owner_id: str, sha256: str) -> Photo | None:
    return db.scalar(select(Photo).where(Photo.owner_id == owner_id, Photo.sha256 == sha256))


def blob_in_use(db: Session, sha256: str) -> bool:
    return (db.scalar(select(func.count()).select_from(Photo).where(Photo.sha256 == sha256)) or 0) > 0


def get_photo(db: Session, *, owner_id: str, photo_id: str) -> Photo:
    return get_owned(db, Photo, owner_id=owner_id, row_id=photo_id, what="photo")


def get_photos(db: Session, *, owner_id: str, photo_ids: list[str]) -> list[Photo]:
    """The owner's photos among `photo_ids` not in the trash, in the order given (others are skipped)."""
    if not photo_ids:
        return []
    # Trashed photos are hidden from every multi-photo use (exports, duplicates, analysis, review).
    query = select(Photo).where(
        Photo.owner_id == owner_id, Photo.id.in_(photo_ids), Photo.trashed_at.is_(None)
    )
    rows = {p.id: p for p in db.scalars(query)}
    return [rows[photo_id] for photo_id in photo_ids if photo_id in rows]


def owner_photo_ids(db: Session, owner_id: str) -> list[str]:
    """Every photo id of the owner, oldest upload first (the default items of library-wide jobs)."""
    query = select(Photo.id).where(Photo.owner_id == owner_id, Photo.trashed_at.is_(None))
    return list(db.scalars(query.order_by(Photo.uploaded_at)))


# The user fields a PATCH (or a bulk edit) may set.
USER_FIELDS = ("rotation", "caption", "favorite", "rating", "archived")


def set_user_fields(photo: Photo, changes: dict[str, Any]) -> None:
    """Apply user-field changes to a photo row (no commit: the caller's transaction)."""
    for name in USER_FIELDS:
        if name not in changes:
            continue
        value = changes[name]
        if name == "caption":
            photo.caption = value or None  # null or blank clears it
        elif value is not None:
            setattr(photo, name, value)


def update_photo(db: Session, *, owner_id: str, photo_id: str, changes: dict[str, Any]) -> Photo:
    photo = get_photo(db, owner_id=owner_id, photo_id=photo_id)
    set_user_fields(photo, changes)
    photos_changed(db, owner_id, [photo.id])
    db.commit()
    return photo


def purge_photos(db: Session, store: BlobStore, photos: list[Photo]) -> int:
    """Delete these photo rows for good (one commit), then the bytes no photo of any owner still uses."""
    if not photos:
        return 0
    by_owner: dict[str, list[str]] = {}
    for photo in photos:
        by_owner.setdefault(photo.owner_id, []).append(photo.id)
    for owner_id, ids in by_owner.items():
        photos_deleted(db, owner_id, ids)
    hashes = {photo.sha256 for photo in photos}
    for photo in photos:
        db.delete(photo)
    db.commit()
    for sha256 in hashes:
        if not blob_in_use(db, sha256):
            store.delete(sha256)
    log.info("%d photos purged", len(photos))
    return len(photos)


def haversine_km_sql(lat: float, lon: float) -> ColumnElement[float]:
    """Great-circle distance from (lat, lon) to each photo, in SQL (SQLite gets the functions on connect)."""
    dlat = func.radians(Photo.gps_lat - lat)
    dlon = func.radians(Photo.gps_lon - lon)
    a = func.sin(dlat / 2) * func.sin(dlat / 2) + func.cos(func.radians(literal(lat))) * func.cos(
        func.radians(Photo.gps_lat)
    ) * func.sin(dlon / 2) * func.sin(dlon / 2)
    return 2 * EARTH_RADIUS_KM * func.asin(func.sqrt(a))


def apply_filters(query: Select[Any], filters: PhotoFilters) -> Select[Any]:
    """Every listing, search, export, timeline, facet and map query goes through here: trashed photos
    never pass, archived ones only when asked for."""
    query = query.where(Photo.trashed_at.is_(None), Photo.archived.is_(bool(filters.archived)))
    if filters.favorite is not None:
        query = query.where(Photo.favorite.is_(filters.favorite))
    if filters.min_rating is not None:
        query = query.where(Photo.rating >= filters.min_rating)
    if filters.has_gps is not None:
        query = query.where(Photo.gps_lat.is_not(None) if filters.has_gps else Photo.gps_lat.is_(None))
    if filters.place:
        query = query.where(
            place_matches(Photo.place_city, Photo.place_region, Photo.place_country, filters.place)
        )
    if filters.album is not None:
        in_album = select(AlbumPhoto.photo_id).where(
            AlbumPhoto.album_id == filters.album, AlbumPhoto.photo_id == Photo.id
        )
        query = query.where(in_album.exists())
    if filters.taken_after is not None:
        query = query.where(Photo.taken_at >= _naive(filters.taken_after))
    if filters.taken_before is not None:
        query = query.where(Photo.taken_at <= _naive(filters.taken_before))
    if filters.camera:
        query = query.where(camera_matches(Photo.camera_make, Photo.camera_model, filters.camera))
    # Each list filter is one subquery with one IN list, whatever its length: a subquery per value
    # made PostgreSQL plan for minutes (256 tags took over 20 s on 8 photos).
    if filters.tags:
        wanted = tag_names(filters.tags)
        tags_held = (
            select(func.count(func.distinct(PhotoTag.name)))
            .where(PhotoTag.photo_id == Photo.id, PhotoTag.name.in_(wanted), PhotoTag.state != "rejected")
            .scalar_subquery()
        )
        query = query.where(tags_held == len(wanted))
    if filters.any_tags:
        query = query.where(_has_tag(filters.any_tags))
    if filters.people:
        wanted_people = sorted(set(filters.people))
        people_shown = (
            select(func.count(func.distinct(Face.person_id)))
            .where(Face.photo_id == Photo.id, Face.person_id.in_(wanted_people))
            .scalar_subquery()
        )
        query = query.where(people_shown == len(wanted_people))
    if filters.has_faces is not None:
        any_face = select(Face.id).where(Face.photo_id == Photo.id).exists()
        query = query.where(any_face if filters.has_faces else ~any_face)
    if filters.min_quality is not None:
        query = query.where(Photo.quality_score >= filters.min_quality)
    if filters.lat is not None and filters.lon is not None and filters.radius_km is not None:
        # A bounding box first lets the (owner, lat, lon) index do the coarse work.
        box = RadiusBox.around(filters.lat, filters.lon, filters.radius_km)
        query = query.where(
            Photo.gps_lat.is_not(None),
            Photo.gps_lat.between(box.lat_low, box.lat_high),
            haversine_km_sql(filters.lat, filters.lon) <= filters.radius_km,
        )
        if box.lon_low is not None and box.lon_high is not None:
            if box.crosses_antimeridian:
                query = query.where(or_(Photo.gps_lon >= box.lon_low, Photo.gps_lon <= box.lon_high))
            else:
                query = query.where(Photo.gps_lon.between(box.lon_low, box.lon_high))
    return query


@dataclass(frozen=True)
class RadiusBox:
    """The latitude and longitude bounds around a radius filter's circle (longitude: None when the
    circle spans every meridian; low > high when the box crosses the antimeridian)."""

    lat_low: float
    lat_high: float
    lon_low: float | None
    lon_high: float | None

    @property
    def crosses_antimeridian(self) -> bool:
        return self.lon_low is not None and self.lon_high is not None and self.lon_low > self.lon_high

    @classmethod
    def around(cls, lat: float, lon: float, radius_km: float) -> "RadiusBox":
        dlat = radius_km / 111.0
        coslat = max(math.cos(math.radians(lat)), 1e-6)
        dlon = min(180.0, radius_km / (111.0 * coslat))
        if dlon >= 180.0:
            return cls(lat - dlat, lat + dlat, None, None)
        low, high = lon - dlon, lon + dlon
        return cls(
            lat - dlat, lat + dlat, low + 360 if low < -180 else low, high - 360 if high > 180 else high
        )


def haversine_km(lat: float, lon: float, gps_lat: float, gps_lon: float) -> float:
    """haversine_km_sql in Python, operation for operation (SQLite evaluates that one with these same
    math functions; PostgreSQL's are the C library's, as Python's), so both agree to the last bit."""
    dlat = math.radians(gps_lat - lat)
    dlon = math.radians(gps_lon - lon)
    a = math.sin(dlat / 2) * math.sin(dlat / 2) + math.cos(math.radians(lat)) * math.cos(
        math.radians(gps_lat)
    ) * math.sin(dlon / 2) * math.sin(dlon / 2)
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def camera_matches(
    make: SQLColumnExpression[Any], model: SQLColumnExpression[Any], camera: str
) -> ColumnElement[bool]:
    """The camera filter: make, model or both together contain the words (any case)."""
    term = f"%{camera.lower()}%"
    return or_(
        func.lower(make).like(term),
        func.lower(model).like(term),
        func.lower(func.coalesce(make, "") + " " + func.coalesce(model, "")).like(term),
    )


def place_matches(
    city: SQLColumnExpression[Any],
    region: SQLColumnExpression[Any],
    country: SQLColumnExpression[Any],
    place: str,
) -> ColumnElement[bool]:
    """The place filter: the city, region or country is the name (any case)."""
    name = place.strip().lower()
    return or_(func.lower(city) == name, func.lower(region) == name, func.lower(country) == name)


def tag_names(names: list[str]) -> list[str]:
    """Tag names as the tag filters compare them (spaces collapsed, lower case)."""
    return sorted({" ".join(name.split()).lower() for name in names})


def _has_tag(names: list[str]) -> ColumnElement[bool]:
    # A rejected tag is the user saying "not this", so it never matches.
    wanted = tag_names(names)
    return (
        select(PhotoTag.id)
        .where(PhotoTag.photo_id == Photo.id, PhotoTag.name.in_(wanted), PhotoTag.state != "rejected")
        .exists()
    )


def _naive(value: datetime) -> datetime:
    # Capture times are camera-local wall time, so filters compare wall times too.
    return value.replace(tzinfo=None)


def list_photos(
    db: Session,
    *,
    owner_id: str,
    filters: PhotoFilters,
    sort: PhotoSort = "-taken_at",
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Photo], str | None]:
    """The owner's photos that pass the filters, keyset-paged. The cursor is (sort value, photo id);
    by capture time, photos without one come last either way (their sort value is a sentinel)."""
    descending = sort.startswith("-")
    after: tuple[datetime, str] | None = None
    if cursor:
        value, last_id = decode_cursor(cursor, (datetime, str))
        after = (value, last_id)
    base = apply_filters(select(Photo).where(Photo.owner_id == owner_id), filters)
    if sort.lstrip("-") == "uploaded_at":
        return _keyset_page(db, base, Photo.uploaded_at, descending, limit, after, lambda p: p.uploaded_at)
    # Dated photos first, then the undated ones by id: two index-ordered reads rather than one sort of
    # coalesce(taken_at, ...) over the whole library (which no index can serve: 270 ms at 100 000).
    undated = _FAR_PAST if descending else _FAR_FUTURE
    rows: list[Photo] = []
    if after is None or _naive(after[0]) != undated:
        dated = base.where(Photo.taken_at.is_not(None))
        rows, next_cursor = _keyset_page(db, dated, Photo.taken_at, descending, limit, after, _capture_key)
        if next_cursor is not None:
            return rows, next_cursor
        after = None
    rest = base.where(Photo.taken_at.is_(None))
    if after is not None:
        rest = rest.where(Photo.id < after[1] if descending else Photo.id > after[1])
    order = Photo.id.desc() if descending else Photo.id.asc()
    rows += db.scalars(rest.order_by(order).limit(limit + 1 - len(rows))).all()
    if len(rows) <= limit:
        return rows, None
    # The page's last photo, dated or not, is where the next page starts.
    last = rows[limit - 1]
    key = _capture_key(last) if last.taken_at is not None else undated
    return rows[:limit], encode_cursor([key.isoformat(), last.id])


def _capture_key(photo: Photo) -> datetime:
    assert photo.taken_at is not None
    return _naive(photo.taken_at)


def _keyset_page(
    db: Session,
    query: Select[Any],
    column: Any,
    descending: bool,
    limit: int,
    after: tuple[datetime, str] | None,
    value_of: Any,
) -> tuple[list[Photo], str | None]:
    if after is not None:
        # uploaded_at compares through its UTC column type, taken_at as naive wall time.
        bound = literal(after[0], type_=column.type) if column is Photo.uploaded_at else _naive(after[0])
        if descending:
            query = query.where(or_(column < bound, and_(column == bound, Photo.id < after[1])))
        else:
            query = query.where(or_(column > bound, and_(column == bound, Photo.id > after[1])))
    order = (column.desc(), Photo.id.desc()) if descending else (column.asc(), Photo.id.asc())
    rows = list(db.scalars(query.order_by(*order).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor([value_of(last).isoformat(), last.id])


def count_photos(db: Session, *, owner_id: str, filters: PhotoFilters) -> int:
    """How many photos the listing with these filters holds (for `include_total`)."""
    query = apply_filters(select(func.count()).select_from(Photo).where(Photo.owner_id == owner_id), filters)
    return int(db.scalar(query) or 0)


def original_path(store: BlobStore, photo: Photo) -> Path:
    try:
        return store.local_path(photo.sha256)
    except FileNotFoundError:
        raise NotFound(f"the original of photo {photo.id} is missing from storage") from None


def thumbnail_path(store: BlobStore, photo: Photo, size: int) -> Path:
    if not store.exists(photo.sha256):
        raise NotFound(f"the original of photo {photo.id} is missing from storage")
    return store.get_or_make_derived(
        photo.sha256,
        f"thumb{size}.r{photo.rotation}.jpg",
        lambda original: make_thumbnail(original, size, rotation=photo.rotation),
    )


def after_upload(db: Session, *, owner_id: str, photo_ids: list[str]) -> str | None:
    """New photos are analysed automatically, batched with other photos still waiting for analysis.
    Answers the id of the job they joined."""
    if "analyze" not in job_type_names():
        return None
    job = add_to_queued_job(db, owner_id=owner_id, type="analyze", items=photo_ids)
    db.commit()
    return job.id


def enhanced_path(store: BlobStore, photo: Photo, mode: Literal["low_light"]) -> Path:
    """A derived, enhanced JPEG (made once, cached); the original is only read."""
    if not store.exists(photo.sha256):
        raise NotFound(f"the original of photo {photo.id} is missing from storage")

    def make(original: bytes) -> bytes:
        enhanced = enhance_low_light(
            load_oriented(original, max_side=ENHANCED_MAX_SIDE, rotation=photo.rotation)
        )
        buffer = io.BytesIO()
        enhanced.save(buffer, "JPEG", quality=90)
        return buffer.getvalue()

    return store.get_or_make_derived(photo.sha256, f"{mode}.r{photo.rotation}.jpg", make)
