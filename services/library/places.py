"""Places (named from GPS offline at analysis) and the map: clusters of located photos in a
bounding box, on a grid whose cell shrinks as the map zooms in, computed by the database."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from core.errors import Invalid
from core.pagination import decode_cursor, encode_cursor
from db.models import Photo
from services.photos.filters import PhotoFilters
from services.photos.service import apply_filters

# Grid cells per 256 px map tile side: a cluster covers about 64 px of screen at any zoom.
CELLS_PER_TILE = 4
MAX_ZOOM = 22


@dataclass(frozen=True)
class PlaceCount:
    city: str | None
    region: str | None
    country: str | None
    count: int
    photo_id: str  # a representative photo


@dataclass(frozen=True)
class MapCluster:
    lat: float
    lon: float
    count: int
    photo_id: str
    south: float
    west: float
    north: float
    east: float


def places(
    db: Session, *, owner_id: str, filters: PhotoFilters, limit: int, cursor: str | None
) -> tuple[list[PlaceCount], str | None]:
    """Named places with photo counts, most photos first (paged by position)."""
    offset = 0
    if cursor:
        (offset,) = decode_cursor(cursor, (int,))
        if not isinstance(offset, int) or offset < 0:
            raise Invalid("cursor does not belong to this listing", errors=[{"field": "cursor"}])
    columns = (Photo.place_city, Photo.place_region, Photo.place_country)
    named: Any = select(*columns, func.count(), func.min(Photo.id)).where(
        Photo.owner_id == owner_id, or_(*(column.is_not(None) for column in columns))
    )
    query = apply_filters(named, filters).group_by(*columns)
    rows = db.execute(query.order_by(func.count().desc(), *columns).offset(offset).limit(limit + 1)).all()
    items = [
        PlaceCount(city=c, region=r, country=k, count=int(n), photo_id=pid)
        for c, r, k, n, pid in rows[:limit]
    ]
    return items, encode_cursor([offset + limit]) if len(rows) > limit else None


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """`west,south,east,north` in degrees; west > east is a box across the antimeridian."""
    try:
        west, south, east, north = (float(part) for part in text.split(","))
    except ValueError:
        raise Invalid(
            "bbox is west,south,east,north in degrees", errors=[{"field": "bbox", "message": "four numbers"}]
        ) from None
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise Invalid(
            "bbox is out of range: -180 <= west, east <= 180 and -90 <= south <= north <= 90",
            errors=[{"field": "bbox"}],
        )
    return west, south, east, north


def cell_degrees(zoom: int) -> float:
    return 360.0 / float(2**zoom * CELLS_PER_TILE)


def map_clusters(
    db: Session, *, owner_id: str, filters: PhotoFilters, bbox: tuple[float, float, float, float], zoom: int
) -> list[MapCluster]:
    """Located photos in the box, grouped by grid cell: centre (mean position), count, one photo."""
    west, south, east, north = bbox
    cell = cell_degrees(zoom)
    if west <= east:
        in_lon: Any = Photo.gps_lon.between(west, east)
    else:
        in_lon = or_(Photo.gps_lon >= west, Photo.gps_lon <= east)
    gx = func.floor(Photo.gps_lon / cell).label("gx")
    gy = func.floor(Photo.gps_lat / cell).label("gy")
    query = apply_filters(
        select(
            func.avg(Photo.gps_lat),
            func.avg(Photo.gps_lon),
            func.count(),
            func.min(Photo.id),
            func.min(Photo.gps_lat),
            func.min(Photo.gps_lon),
            func.max(Photo.gps_lat),
            func.max(Photo.gps_lon),
        ).where(
            Photo.owner_id == owner_id,
            Photo.gps_lat.is_not(None),
            and_(Photo.gps_lat >= south, Photo.gps_lat <= north),
            in_lon,
        ),
        filters,
    ).group_by(gx, gy)
    return [
        MapCluster(
            lat=round(float(lat), 6),
            lon=round(float(lon), 6),
            count=int(n),
            photo_id=pid,
            south=float(s),
            west=float(w),
            north=float(nn),
            east=float(e),
        )
        for lat, lon, n, pid, s, w, nn, e in db.execute(query.order_by(func.count().desc()))
    ]
