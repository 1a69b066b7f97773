"""Facet counts for the current filters: how many photos each tag, person, camera, year, place,
favourite state and rating would leave. One grouped query per facet over the filtered photos."""

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Face, Person, Photo, PhotoTag
from services.library.timeline import bucket_of
from services.photos.filters import PhotoFilters
from services.photos.service import apply_filters

# Values listed per facet (per tag kind for tags), most frequent first.
DEFAULT_FACET_LIMIT = 20


def facets(
    db: Session, *, owner_id: str, filters: PhotoFilters, limit: int = DEFAULT_FACET_LIMIT
) -> dict[str, Any]:
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
