"""Per-owner photo columns in memory, so that a filtered timeline or facet count is a numpy count.

A grouped query over the photos a filter leaves costs time in proportion to them: at 100 000 photos
0.1-1.4 s per filtered timeline or facets request. So each process keeps, per owner, the visible
photos' capture time, position, the columns the filters read and the facet keys of their search
documents (services.search.facet_counts) as arrays. A count is then a mask (each filter evaluated on
the arrays, as apply_filters does in SQL) followed by a bincount. Filters on text (camera, place) are
asked of the database over the few distinct values the keys hold, so they match exactly as SQL
does; album membership is read from the database; a filter these columns do not know goes to the
database as the one filter model compiles it.

Kept like the search index (services.search.index): every change of a photo rewrites its document and
bumps the owner's change number in the same transaction, so each request compares that number with
the one applied and re-reads only the photos whose documents changed since. The database stays the
truth, and the counts are the ones the grouped queries give.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import ColumnElement, String, cast, literal, select
from sqlalchemy.orm import Session

from db.models import AlbumPhoto, Face, Photo
from db.search_models import PhotoSearchDoc, SearchOwnerState
from services.photos.filters import PhotoFilters
from services.photos.service import (
    EARTH_RADIUS_KM,
    RadiusBox,
    apply_filters,
    camera_matches,
    haversine_km,
    place_matches,
    tag_names,
)
from services.search.documents import owned_by
from services.search.per_owner import PerOwner

log = logging.getLogger(__name__)

Bucket = Literal["year", "month", "day"]
_UNIT = {"year": "Y", "month": "M", "day": "D"}
# Filters these columns evaluate; any other goes to the database through apply_filters.
NATIVE_FILTERS = frozenset(
    {
        "taken_after",
        "taken_before",
        "camera",
        "lat",
        "lon",
        "radius_km",
        "tags",
        "any_tags",
        "people",
        "has_faces",
        "min_quality",
        "album",
        "favorite",
        "min_rating",
        "archived",
        "has_gps",
        "place",
    }
)
# Distinct values per statement when the database matches camera or place names.
_VALUES_PER_QUERY = 200
# Distances within this many km of the radius are recomputed with the math functions SQL uses
# (numpy's sine may differ from the C library's in the last bit).
_RADIUS_MARGIN_KM = 1e-6
# Past this many changed photos (or this share of the library) a reload beats patching.
RELOAD_CHANGES = 2000
RELOAD_SHARE = 0.1
MAX_OWNERS = 64
# Ids per IN list when re-reading changed photos.
_CHUNK = 1000
_EPOCH = datetime(1970, 1, 1)
_ROW_COLUMNS = ("ids", "alive", "taken", "dated", "favorite", "rating", "quality", "lat", "lon", "has_faces")


def _micros(moment: datetime) -> int:
    # Capture times are camera-local wall time, compared as such (as apply_filters does).
    return (moment.replace(tzinfo=None) - _EPOCH) // timedelta(microseconds=1)


class OwnerColumns:
    """One owner's visible photos (neither trashed nor archived), a row each. A changed photo's old row
    is marked dead and a new one appended; dead rows are squeezed out once they are many."""

    def __init__(self, owner_id: str) -> None:
        self.owner_id = owner_id
        # Held while refreshing and while a count reads the arrays (milliseconds).
        self.lock = threading.RLock()
        self.version = -1
        # False until every document of the owner carries its facet keys (migration 0010).
        self.ready = False
        self._clear()

    def _clear(self) -> None:
        self.ids = np.zeros(0, dtype=object)  # the photo id of each row
        self.row_of: dict[str, int] = {}
        self.size = 0
        self.dead = 0
        self.alive = np.zeros(0, dtype=bool)
        self.taken = np.zeros(0, dtype=np.int64)  # microseconds since 1970 of the wall time
        self.dated = np.zeros(0, dtype=bool)
        self.favorite = np.zeros(0, dtype=bool)
        self.rating = np.zeros(0, dtype=np.int16)
        self.quality = np.zeros(0, dtype=np.float64)  # NaN: no score (fails every min_quality)
        self.lat = np.zeros(0, dtype=np.float64)  # NaN: no position
        self.lon = np.zeros(0, dtype=np.float64)
        self.has_faces = np.zeros(0, dtype=bool)
        # The facet keys, one (row, key code) pair each.
        self.entries = 0
        self.entry_rows = np.zeros(0, dtype=np.int32)
        self.entry_codes = np.zeros(0, dtype=np.int32)
        self.codes: dict[str, int] = {}
        self.keys: list[list[Any]] = []
        self.tag_codes: dict[str, list[int]] = {}  # tag name -> its keys (one per kind)
        self.person_codes: dict[str, int] = {}
        self.kind_codes: dict[str, list[int]] = {}  # "camera", "place", ... -> their keys
        # Visible photos whose document has no facet keys yet: counted by queries while any exist.
        self.unkeyed: set[str] = set()
        self._order: np.ndarray | None = None

    # ---- keeping up with the database ----------------------------------------------------------

    def refresh(self, db: Session) -> None:
        with self.lock:
            version, ready = _state(db, self.owner_id)
            self.ready = ready
            if not ready:
                self.version = -1
                self._clear()
                return
            if self.version < 0:
                self._load(db, version)
                return
            if version == self.version:
                return
            changed = db.execute(
                select(PhotoSearchDoc.photo_id, PhotoSearchDoc.version).where(
                    PhotoSearchDoc.owner_id == self.owner_id, PhotoSearchDoc.version > self.version
                )
            ).all()
            if len(changed) > max(RELOAD_CHANGES, RELOAD_SHARE * (self.size - self.dead)):
                self._load(db, version)
                return
            ids = [photo_id for photo_id, _ in changed]
            rows: list[Sequence[Any]] = []
            with_faces: set[str] = set()
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                rows.extend(_photo_rows(db, self.owner_id, chunk))
                with_faces.update(_photos_with_faces(db, self.owner_id, chunk))
            for photo_id in ids:
                self._kill(photo_id)
            self._append(rows, with_faces)
            self.version = max([version, *(v for _, v in changed)])
            if self.dead > 1000 and self.dead > (self.size - self.dead) // 4:
                self._compact()

    def _load(self, db: Session, version: int) -> None:
        started = time.perf_counter()
        self._clear()
        # The version is read before the rows: anything committed after it is re-read next time.
        rows = _photo_rows(db, self.owner_id, None)
        self._append(rows, set(_photos_with_faces(db, self.owner_id, None)))
        self.version = version
        log.info(
            "photo columns of owner %s loaded: %d photos, %d facet keys, version %d, %.0f ms",
            self.owner_id,
            self.size,
            self.entries,
            version,
            (time.perf_counter() - started) * 1000,
        )

    def _kill(self, photo_id: str) -> None:
        row = self.row_of.pop(photo_id, None)
        if row is not None:
            self.alive[row] = False
            self.dead += 1
            self._order = None
        self.unkeyed.discard(photo_id)

    def _reserve(self, rows: int, entries: int) -> None:
        if rows > len(self.alive):
            capacity = max(rows, 2 * len(self.alive), 1024)
            for name in _ROW_COLUMNS:
                old = getattr(self, name)
                grown = np.zeros(capacity, dtype=old.dtype)
                grown[: self.size] = old[: self.size]
                setattr(self, name, grown)
        if entries > len(self.entry_rows):
            capacity = max(entries, 2 * len(self.entry_rows), 8192)
            for name in ("entry_rows", "entry_codes"):
                old = getattr(self, name)
                grown = np.zeros(capacity, dtype=old.dtype)
                grown[: self.entries] = old[: self.entries]
                setattr(self, name, grown)

    def _code(self, key: str) -> int:
        code = self.codes.get(key)
        if code is None:
            code = self.codes[key] = len(self.keys)
            parsed = json.loads(key)
            self.keys.append(parsed)
            self.kind_codes.setdefault(parsed[0], []).append(code)
            if parsed[0] == "tag":
                self.tag_codes.setdefault(parsed[2], []).append(code)
            elif parsed[0] == "person":
                self.person_codes[parsed[1]] = code
        return code

    def _append(self, rows: Sequence[Sequence[Any]], with_faces: set[str]) -> None:
        first = self.size
        end = first + len(rows)
        entry_rows: list[int] = []
        entry_codes: list[int] = []
        for row, (photo_id, *_, keys) in enumerate(rows, start=first):
            self.row_of[photo_id] = row
            if keys is None:
                self.unkeyed.add(photo_id)
                continue
            for key in keys:
                entry_rows.append(row)
                entry_codes.append(self._code(key))
        self._reserve(end, self.entries + len(entry_rows))
        self.ids[first:end] = [r[0] for r in rows]
        self.alive[first:end] = True
        self.dated[first:end] = [r[1] is not None for r in rows]
        self.taken[first:end] = [_micros(r[1]) if r[1] is not None else 0 for r in rows]
        self.favorite[first:end] = [bool(r[2]) for r in rows]
        self.rating[first:end] = [int(r[3] or 0) for r in rows]
        self.quality[first:end] = [np.nan if r[4] is None else float(r[4]) for r in rows]
        self.lat[first:end] = [np.nan if r[5] is None else float(r[5]) for r in rows]
        self.lon[first:end] = [np.nan if r[6] is None else float(r[6]) for r in rows]
        self.has_faces[first:end] = [r[0] in with_faces for r in rows]
        self.entry_rows[self.entries : self.entries + len(entry_rows)] = entry_rows
        self.entry_codes[self.entries : self.entries + len(entry_codes)] = entry_codes
        self.entries += len(entry_rows)
        self.size = end
        self._order = None

    def _compact(self) -> None:
        """Squeeze out the dead rows and their keys."""
        keep = np.nonzero(self.alive[: self.size])[0]
        new_row = np.full(self.size, -1, dtype=np.int64)
        new_row[keep] = np.arange(len(keep))
        rows = self.entry_rows[: self.entries]
        kept = self.alive[rows]
        for name in _ROW_COLUMNS:
            setattr(self, name, getattr(self, name)[keep].copy())
        self.entry_codes = self.entry_codes[: self.entries][kept].copy()
        self.entry_rows = new_row[rows[kept]].astype(np.int32)
        self.entries = len(self.entry_rows)
        self.row_of = {photo_id: row for row, photo_id in enumerate(self.ids.tolist())}
        self.size = len(keep)
        self.dead = 0
        self._order = None

    # ---- counting --------------------------------------------------------------------------------

    def serves(self, filters: PhotoFilters) -> bool:
        """Whether these columns can count for the filters: archived photos are not kept, and an owner
        whose documents predate the facet keys is counted by queries until they are built."""
        return self.ready and self.version >= 0 and not self.unkeyed and not filters.archived

    def timeline(
        self, db: Session, filters: PhotoFilters, bucket: Bucket, newest_first: bool
    ) -> list[tuple[str | None, int, str]] | None:
        """(label, photo count, earliest photo id) per bucket of the photos the filters leave, as
        services.library.timeline's grouped query gives them; None where the columns cannot count."""
        with self.lock:
            if not self.serves(filters):
                return None
            return self._timeline(self._matching(db, filters), bucket, newest_first)

    def facet_counts(self, db: Session, filters: PhotoFilters) -> list[tuple[list[Any], int]] | None:
        """(facet key, photo count) over the photos the filters leave, as services.search.facet_counts
        reads them for the whole library; None where the columns cannot count."""
        with self.lock:
            if not self.serves(filters):
                return None
            mask = self._matching(db, filters)
            codes = self.entry_codes[: self.entries][mask[self.entry_rows[: self.entries]]]
            counts = np.bincount(codes, minlength=len(self.keys))
            return [(self.keys[code], int(counts[code])) for code in np.nonzero(counts)[0].tolist()]

    def _matching(self, db: Session, filters: PhotoFilters) -> np.ndarray:
        """Which rows pass the filters: the same photos as apply_filters leaves."""
        n = self.size
        mask = self.alive[:n].copy()
        if filters.favorite is not None:
            mask &= self.favorite[:n] == filters.favorite
        if filters.min_rating is not None:
            mask &= self.rating[:n] >= filters.min_rating
        if filters.has_gps is not None:
            mask &= np.isnan(self.lat[:n]) != filters.has_gps
        if filters.has_faces is not None:
            mask &= self.has_faces[:n] == filters.has_faces
        if filters.min_quality is not None:
            mask &= self.quality[:n] >= filters.min_quality
        if filters.taken_after is not None:
            mask &= self.dated[:n] & (self.taken[:n] >= _micros(filters.taken_after))
        if filters.taken_before is not None:
            mask &= self.dated[:n] & (self.taken[:n] <= _micros(filters.taken_before))
        # "All of" counts distinct names, whatever the kind of tag carries each.
        for name in tag_names(filters.tags):
            mask &= self._rows_with(self.tag_codes.get(name, []))
        if filters.any_tags:
            names = tag_names(filters.any_tags)
            mask &= self._rows_with([code for name in names for code in self.tag_codes.get(name, [])])
        for person_id in sorted(set(filters.people)):
            code = self.person_codes.get(person_id)
            mask &= self._rows_with([] if code is None else [code])
        if filters.camera:
            camera = filters.camera
            term = camera.lower()
            mask &= self._rows_with(
                self._matching_keys(
                    db,
                    "camera",
                    camera,
                    lambda make, model: camera_matches(make, model, camera),
                    lambda make, model: (
                        any(term in value.lower() for value in (make, model) if value is not None)
                        or term in f"{make or ''} {model or ''}".lower()
                    ),
                )
            )
        if filters.place:
            place = filters.place
            name = place.strip().lower()
            mask &= self._rows_with(
                self._matching_keys(
                    db,
                    "place",
                    place,
                    lambda city, region, country: place_matches(city, region, country, place),
                    lambda *names: any(value is not None and value.lower() == name for value in names),
                )
            )
        if filters.lat is not None and filters.lon is not None and filters.radius_km is not None:
            mask &= self._within(filters.lat, filters.lon, filters.radius_km)
        if filters.album is not None:
            in_album = select(AlbumPhoto.photo_id).where(AlbumPhoto.album_id == filters.album)
            mask &= self._rows_of(db.scalars(in_album))
        rest = filters.model_dump(exclude=set(NATIVE_FILTERS), exclude_defaults=True)
        if rest:
            mask &= self._rows_of(self._ids_from_database(db, PhotoFilters(**rest)))
        return mask

    def _rows_with(self, codes: list[int]) -> np.ndarray:
        rows = np.zeros(self.size, dtype=bool)
        if codes:
            wanted = np.zeros(len(self.keys), dtype=bool)
            wanted[codes] = True
            rows[self.entry_rows[: self.entries][wanted[self.entry_codes[: self.entries]]]] = True
        return rows

    def _matching_keys(
        self,
        db: Session,
        kind: str,
        wanted: str,
        condition: Callable[..., ColumnElement[bool]],
        plain_test: Callable[..., bool],
    ) -> list[int]:
        """The keys of this kind (camera, place) whose values pass the filter's SQL condition. Plain
        text is tested here; any other value is asked of the database (over the distinct values, not
        the photos), so that names match exactly as the grouped query matches them."""
        matched: list[int] = []
        codes: list[int] = []
        for code in self.kind_codes.get(kind, []):
            values = self.keys[code][1:]
            if _plain(wanted) and all(value is None or _plain(value) for value in values):
                if plain_test(*values):
                    matched.append(code)
            else:
                codes.append(code)
        for start in range(0, len(codes), _VALUES_PER_QUERY):
            chunk = codes[start : start + _VALUES_PER_QUERY]
            tests = [condition(*(_text(value) for value in self.keys[code][1:])) for code in chunk]
            answers = db.execute(select(*tests)).one()
            matched.extend(code for code, hit in zip(chunk, answers, strict=True) if hit)
        return matched

    def _within(self, lat: float, lon: float, radius_km: float) -> np.ndarray:
        """The radius filter: apply_filters' bounding box, then the haversine distance."""
        n = self.size
        lats, lons = self.lat[:n], self.lon[:n]
        box = RadiusBox.around(lat, lon, radius_km)
        inside = (lats >= box.lat_low) & (lats <= box.lat_high)
        if box.lon_low is not None and box.lon_high is not None:
            if box.crosses_antimeridian:
                inside &= (lons >= box.lon_low) | (lons <= box.lon_high)
            else:
                inside &= (lons >= box.lon_low) & (lons <= box.lon_high)
        rows = np.nonzero(inside)[0]
        row_lat, row_lon = lats[rows], lons[rows]
        dlat, dlon = np.radians(row_lat - lat), np.radians(row_lon - lon)
        a = (
            np.sin(dlat / 2) ** 2
            + np.cos(np.radians(lat)) * np.cos(np.radians(row_lat)) * np.sin(dlon / 2) ** 2
        )
        with np.errstate(invalid="ignore"):
            distance = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))
        result = np.zeros(n, dtype=bool)
        result[rows[distance <= radius_km]] = True
        for index in np.nonzero(np.abs(distance - radius_km) <= _RADIUS_MARGIN_KM)[0].tolist():
            row = int(rows[index])
            try:
                result[row] = haversine_km(lat, lon, float(lats[row]), float(lons[row])) <= radius_km
            except ValueError:  # asin of a rounding error past 1, which SQL fails on too
                result[row] = False
        return result

    def _ids_from_database(self, db: Session, filters: PhotoFilters) -> Iterable[str]:
        query = apply_filters(select(Photo.id).where(Photo.owner_id == self.owner_id), filters)
        return db.scalars(query)

    def _rows_of(self, photo_ids: Iterable[str]) -> np.ndarray:
        rows = np.zeros(self.size, dtype=bool)
        # A photo the columns do not have yet was committed after their version: the next request
        # (at the newer change number) counts it.
        found = [row for row in map(self.row_of.get, photo_ids) if row is not None]
        rows[np.asarray(found, dtype=np.int64)] = True
        return rows

    def _timeline(
        self, mask: np.ndarray, bucket: Bucket, newest_first: bool
    ) -> list[tuple[str | None, int, str]]:
        """Newest first (or oldest first), the undated photos last. Walking the dated rows in (taken_at,
        id) order, as the grouped query orders them, makes each bucket's first row its earliest photo
        (ties to the smallest id); the undated bucket's photo is its smallest id."""
        order = self._taken_order()
        rows = order[mask[order]]
        codes = self.taken[rows].astype("datetime64[us]").astype(f"datetime64[{_UNIT[bucket]}]")
        starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1]))) if len(rows) else rows
        counts = np.diff(np.append(starts, len(rows))).tolist()
        labels = np.datetime_as_string(codes[starts]).tolist()
        first = self.ids[rows[starts]].tolist()
        result: list[tuple[str | None, int, str]] = list(zip(labels, counts, first, strict=True))
        if newest_first:
            result.reverse()
        undated = np.flatnonzero(mask & ~self.dated[: self.size])
        if len(undated):
            result.append((None, len(undated), min(self.ids[undated].tolist())))
        return result

    def _taken_order(self) -> np.ndarray:
        """The live dated rows by (capture time, id), kept until the rows change."""
        if self._order is None:
            dated = np.flatnonzero(self.alive[: self.size] & self.dated[: self.size])
            order = dated[np.argsort(self.taken[dated], kind="stable")]
            taken = self.taken[order]
            # Equal capture times (a burst) are put in id order; there are few of them.
            tied = np.flatnonzero(taken[1:] == taken[:-1])
            if len(tied):
                starts = tied[np.concatenate(([True], tied[1:] != tied[:-1] + 1))]
                for start in starts.tolist():
                    end = start + 1
                    while end < len(order) and taken[end] == taken[start]:
                        end += 1
                    order[start:end] = sorted(order[start:end].tolist(), key=lambda row: str(self.ids[row]))
            self._order = order
        return self._order


def _plain(text: str) -> bool:
    # ASCII without LIKE's wildcards or PostgreSQL's escape character: lower() and LIKE treat it the
    # same in SQLite, in PostgreSQL (outside a Turkish locale) and in Python.
    return text.isascii() and not any(char in text for char in "%_\\")


def _text(value: str | None) -> ColumnElement[Any]:
    return cast(literal(value, String()), String())


def _state(db: Session, owner_id: str) -> tuple[int, bool]:
    row = db.execute(
        select(SearchOwnerState.version, SearchOwnerState.facets_ready).where(
            SearchOwnerState.owner_id == owner_id
        )
    ).first()
    # No state row: the owner never changed a photo, so there is nothing to count.
    return (0, True) if row is None else (int(row[0] or 0), bool(row[1]))


def _photo_rows(db: Session, owner_id: str, photo_ids: list[str] | None) -> list[Sequence[Any]]:
    query = (
        select(
            Photo.id,
            Photo.taken_at,
            Photo.favorite,
            Photo.rating,
            Photo.quality_score,
            Photo.gps_lat,
            Photo.gps_lon,
            PhotoSearchDoc.facet_keys,
        )
        .outerjoin(PhotoSearchDoc, PhotoSearchDoc.photo_id == Photo.id)
        .where(Photo.trashed_at.is_(None), Photo.archived.is_(False))
    )
    if photo_ids is None:
        query = query.where(Photo.owner_id == owner_id)
    else:
        query = query.where(Photo.id.in_(photo_ids), owned_by(Photo.owner_id, owner_id))
    return list(db.execute(query).all())


def _photos_with_faces(db: Session, owner_id: str, photo_ids: list[str] | None) -> Iterable[str]:
    query = select(Face.photo_id).distinct()
    if photo_ids is None:
        query = query.where(Face.owner_id == owner_id)
    else:
        query = query.where(Face.photo_id.in_(photo_ids), owned_by(Face.owner_id, owner_id))
    return db.scalars(query)


_owners: PerOwner[OwnerColumns] = PerOwner(OwnerColumns, MAX_OWNERS)


def owner_columns(db: Session, owner_id: str) -> OwnerColumns:
    """The owner's columns, brought up to date with the database."""
    return _owners.get(db, owner_id)
