"""Facet counts for the current filters: how many photos each tag, person, camera, year, place,
favourite state and rating would leave. Unfiltered (how a gallery opens): read from the counts the
document writer keeps (services.search.facet_counts). Filtered: the facet keys of the matching photos
counted on the owner's photo columns in memory (services.search.columns). Archived photos keep no
facet keys, so they are counted by grouped queries."""

import json
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Face, Person, Photo, PhotoTag
from db.search_models import PhotoSearchDoc
from services.jobs.service import JobContext
from services.library.timeline import bucket_of
from services.photos.filters import PhotoFilters
from services.photos.service import apply_filters
from services.search.columns import owner_columns
from services.search.documents import build_facet_counts
from services.search.facet_counts import counts_ready, owners_to_build, read_counts

# Values listed per facet (per tag kind for tags), most frequent first.
DEFAULT_FACET_LIMIT = 20


def facets(
    db: Session, *, owner_id: str, filters: PhotoFilters, limit: int = DEFAULT_FACET_LIMIT
) -> dict[str, Any]:
    if filters.archived or not counts_ready(db, owner_id):
        # Archived photos keep no facet keys (they are out of the counts): count them by queries.
        return counted_facets(db, owner_id=owner_id, filters=filters, limit=limit)
    if filters == PhotoFilters():
        return facets_from_counts(db, owner_id=owner_id, limit=limit)
    counted = owner_columns(db, owner_id).facet_counts(db, filters)
    if counted is None:
        return filtered_facets_from_keys(db, owner_id=owner_id, filters=filters, limit=limit)
    return _facets_of(db, owner_id, counted, limit)


def filtered_facets_from_keys(
    db: Session, *, owner_id: str, filters: PhotoFilters, limit: int = DEFAULT_FACET_LIMIT
) -> dict[str, Any]:
    """Filtered facets: the facet keys each matching photo's document keeps, summed. One read of the
    matching documents by key instead of a grouped query per facet over the filtered photos."""
    matching = apply_filters(select(Photo.id).where(Photo.owner_id == owner_id), filters).scalar_subquery()
    counts: Counter[str] = Counter()
    for keys in db.scalars(select(PhotoSearchDoc.facet_keys).where(PhotoSearchDoc.photo_id.in_(matching))):
        counts.update(keys or [])
    return _facets_of(db, owner_id, [(json.loads(key), count) for key, count in counts.items()], limit)


def _top(items: list[dict[str, Any]], limit: int | None, *tie: str) -> list[dict[str, Any]]:
    ranked = sorted(items, key=lambda item: (-item["count"], *(str(item[t] or "") for t in tie)))
    return ranked if limit is None else ranked[:limit]


def facets_from_counts(db: Session, *, owner_id: str, limit: int = DEFAULT_FACET_LIMIT) -> dict[str, Any]:
    """The unfiltered facets from the kept counts: one read of a few hundred rows."""
    return _facets_of(db, owner_id, read_counts(db, owner_id), limit)


def _facets_of(
    db: Session, owner_id: str, key_counts: list[tuple[list[Any], int]], limit: int
) -> dict[str, Any]:
    """The facets answer from (facet key, photo count) pairs (see services.search.facet_counts)."""
    tags: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_facet: dict[str, list[dict[str, Any]]] = defaultdict(list)
    person_counts: dict[str, int] = {}
    total = 0
    for key, count in key_counts:
        facet, values = key[0], key[1:]
        if facet == "total":
            total = count
        elif facet == "tag":
            tags[values[0]].append({"value": values[1], "count": count})
        elif facet == "person":
            person_counts[values[0]] = count
        elif facet == "camera":
            by_facet[facet].append({"make": values[0], "model": values[1], "count": count})
        elif facet == "place":
            by_facet[facet].append(
                {"city": values[0], "region": values[1], "country": values[2], "count": count}
            )
        else:
            by_facet[facet].append({"value": values[0], "count": count})
    shown = db.execute(
        select(Person.id, Person.name).where(
            Person.owner_id == owner_id, Person.hidden.is_(False), Person.id.in_(list(person_counts))
        )
    )
    people = [{"value": pid, "name": name, "count": person_counts[pid]} for pid, name in shown]
    return {
        "total": total,
        "tags": {kind: _top(values, limit, "value") for kind, values in tags.items()},
        "people": _top(people, limit, "name"),
        "cameras": _top(by_facet["camera"], limit, "make", "model"),
        "years": sorted(by_facet["year"], key=lambda item: (item["value"] is None, item["value"] or "")),
        "places": _top(by_facet["place"], limit, "city", "region", "country"),
        "favorite": _top(by_facet["favorite"], limit),
        "rating": sorted(by_facet["rating"], key=lambda item: item["value"]),
    }


def counted_facets(
    db: Session, *, owner_id: str, filters: PhotoFilters, limit: int = DEFAULT_FACET_LIMIT
) -> dict[str, Any]:
    """The facets by grouped queries over the filtered photos."""

    def filtered(*columns: Any) -> Any:
        return apply_filters(select(*columns).where(Photo.owner_id == owner_id), filters)

    matching = filtered(Photo.id).scalar_subquery() if filters != PhotoFilters() else None
    total = db.scalar(filtered(func.count())) or 0

    tag_query = (
        # A photo has at most one tag per (kind, name), so rows are photos.
        select(PhotoTag.kind, PhotoTag.name, func.count().label("n"))
        .where(PhotoTag.owner_id == owner_id, PhotoTag.state != "rejected")
        .group_by(PhotoTag.kind, PhotoTag.name)
        .order_by(func.count().desc(), PhotoTag.name)
    )
    person_query = (
        select(Person.id, Person.name, func.count(func.distinct(Face.photo_id)))
        .join(Face, Face.person_id == Person.id)
        .where(Person.owner_id == owner_id, Person.hidden.is_(False))
        .group_by(Person.id, Person.name)
        .order_by(func.count(func.distinct(Face.photo_id)).desc(), Person.name)
        .limit(limit)
    )
    # Without filters the only hidden photos are trashed and archived ones: join on those flags.
    tag_query = tag_query.join(Photo, Photo.id == PhotoTag.photo_id).where(
        Photo.trashed_at.is_(None), Photo.archived.is_(bool(filters.archived))
    )
    person_query = person_query.join(Photo, Photo.id == Face.photo_id).where(
        Photo.trashed_at.is_(None), Photo.archived.is_(bool(filters.archived))
    )
    if matching is not None:
        tag_query = tag_query.where(PhotoTag.photo_id.in_(matching))
        person_query = person_query.where(Face.photo_id.in_(matching))

    tags: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for kind, name, count in db.execute(tag_query):
        if len(tags[kind]) < limit:
            tags[kind].append({"value": name, "count": int(count)})

    def grouped(*columns: Any, top: int | None = limit) -> list[Any]:
        query = filtered(*columns, func.count().label("n")).group_by(*columns)
        return list(db.execute(query.order_by(func.count().desc()).limit(top)))

    year = bucket_of(db, Photo.taken_at, "year")
    return {
        "total": int(total),
        "tags": dict(tags),
        "people": [
            {"value": pid, "name": name, "count": int(n)} for pid, name, n in db.execute(person_query)
        ],
        "cameras": [
            {"make": make, "model": model, "count": int(n)}
            for make, model, n in grouped(Photo.camera_make, Photo.camera_model)
        ],
        "years": sorted(
            ({"value": y, "count": int(n)} for y, n in grouped(year, top=None)),
            key=lambda item: (item["value"] is None, item["value"] or ""),
            reverse=False,
        ),
        "places": [
            {"city": city, "region": region, "country": country, "count": int(n)}
            for city, region, country, n in grouped(Photo.place_city, Photo.place_region, Photo.place_country)
        ],
        "favorite": [{"value": bool(v), "count": int(n)} for v, n in grouped(Photo.favorite)],
        "rating": sorted(
            ({"value": int(v), "count": int(n)} for v, n in grouped(Photo.rating)), key=lambda i: i["value"]
        ),
    }


def build_counts_task(context: JobContext) -> None:
    """The job runner's maintenance step: count the libraries whose documents predate the counts."""
    with context.sessions() as db:
        for owner_id in owners_to_build(db):
            build_facet_counts(db, owner_id)
