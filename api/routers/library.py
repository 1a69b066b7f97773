"""The library: albums, trash, bulk edits, timeline, places, map and facet counts."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic_core import to_json
from sqlalchemy.orm import Session

import services.library.albums as album_service
import services.library.bulk as bulk_service
import services.library.facets as facet_service
import services.library.places as place_service
import services.library.timeline as timeline_service
import services.library.trash as trash_service
from api.deps import (
    CurrentOwner,
    FiltersDep,
    JobRunnerDep,
    ModelsDep,
    PagingDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from api.errors import problem_responses
from core.errors import Invalid
from db.models import Album as AlbumRow
from schemas.common import Page
from schemas.jobs import Job
from schemas.library import (
    Album,
    AlbumCreate,
    AlbumPatch,
    AlbumPhotosChanged,
    BulkPhotoResult,
    BulkRequest,
    BulkResult,
    Facets,
    MapCluster,
    MapClusters,
    PhotoSelection,
    PlaceItem,
    Timeline,
    TrashEmptied,
    TrashRestore,
)
from schemas.photos import Photo, photo_from_view
from services.inference.models import ModelSet
from services.library.overview_cache import cached
from services.photos.selection import select_photo_ids
from services.photos.views import photo_views

albums = APIRouter(prefix="/v1/albums", tags=["albums"])
trash = APIRouter(prefix="/v1/trash", tags=["trash"])
library = APIRouter(prefix="/v1", tags=["library"])
bulk = APIRouter(prefix="/v1/photos", tags=["photos"])

PROBLEMS = problem_responses({404: "no such album or photo for this owner"})


def album_out(db: Session, rows: list[AlbumRow]) -> list[Album]:
    stats = album_service.album_stats(db, [row.id for row in rows])
    return [
        Album(
            id=row.id,
            name=row.name,
            description=row.description,
            cover_photo_id=row.cover_photo_id,
            sort=row.sort,
            photo_count=stats[row.id].photo_count,
            taken_from=stats[row.id].taken_from,
            taken_to=stats[row.id].taken_to,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


def _selected(db: Session, models: ModelSet, owner: str, body: PhotoSelection) -> list[str]:
    return select_photo_ids(
        db,
        models,
        owner_id=owner,
        photo_ids=body.photo_ids,
        filters=body.search.filters() if body.search else None,
        query=body.search.q if body.search else None,
    )


# ---- albums --------------------------------------------------------------------------------------


@albums.get("", name="list", response_model=Page[Album], responses=PROBLEMS)
def list_albums(db: SessionDep, owner: CurrentOwner, paging: PagingDep) -> Page[Album]:
    """The owner's albums by name, with photo counts and capture-date ranges."""
    rows, next_cursor = album_service.list_albums(
        db, owner_id=owner, limit=paging.limit, cursor=paging.cursor
    )
    return Page[Album](items=album_out(db, rows), next_cursor=next_cursor)


@albums.post("", name="create", status_code=status.HTTP_201_CREATED, response_model=Album, responses=PROBLEMS)
def create_album(db: SessionDep, owner: CurrentOwner, body: AlbumCreate) -> Album:
    """Create an album; add photos with `POST /v1/albums/{id}/photos`."""
    row = album_service.create_album(db, owner_id=owner, fields=body.model_dump())
    return album_out(db, [row])[0]


@albums.get("/{album_id}", name="get", response_model=Album, responses=PROBLEMS)
def get_album(db: SessionDep, owner: CurrentOwner, album_id: str) -> Album:
    """One album with counts."""
    return album_out(db, [album_service.get_album(db, owner_id=owner, album_id=album_id)])[0]


@albums.patch("/{album_id}", name="update", response_model=Album, responses=PROBLEMS)
def update_album(db: SessionDep, owner: CurrentOwner, album_id: str, body: AlbumPatch) -> Album:
    """Rename, describe, set the cover, the sort (`manual` or `taken_at`) or the manual `photo_order`."""
    row = album_service.update_album(
        db, owner_id=owner, album_id=album_id, changes=body.model_dump(exclude_unset=True)
    )
    return album_out(db, [row])[0]


@albums.delete("/{album_id}", name="delete", status_code=status.HTTP_204_NO_CONTENT, responses=PROBLEMS)
def delete_album(db: SessionDep, owner: CurrentOwner, album_id: str) -> Response:
    """Delete the album; its photos stay in the library."""
    album_service.delete_album(db, owner_id=owner, album_id=album_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@albums.get("/{album_id}/photos", name="photos", response_model=Page[Photo], responses=PROBLEMS)
def album_photos(db: SessionDep, owner: CurrentOwner, album_id: str, paging: PagingDep) -> Page[Photo]:
    """The album's photos in album order (manual order, or by capture time)."""
    rows, next_cursor = album_service.album_photos(
        db, owner_id=owner, album_id=album_id, limit=paging.limit, cursor=paging.cursor
    )
    return Page[Photo](items=[photo_from_view(v) for v in photo_views(db, rows)], next_cursor=next_cursor)


@albums.post("/{album_id}/photos", name="add-photos", response_model=AlbumPhotosChanged, responses=PROBLEMS)
def add_album_photos(
    db: SessionDep, models: ModelsDep, owner: CurrentOwner, album_id: str, body: PhotoSelection
) -> AlbumPhotosChanged:
    """Add photos by `photo_ids` or by `search` (filters and optional words), after the ones it has."""
    return _change_album(db, models, owner, album_id, body, album_service.add_photos)


@albums.delete(
    "/{album_id}/photos", name="remove-photos", response_model=AlbumPhotosChanged, responses=PROBLEMS
)
def remove_album_photos(
    db: SessionDep, models: ModelsDep, owner: CurrentOwner, album_id: str, body: PhotoSelection
) -> AlbumPhotosChanged:
    """Take photos out of the album (they stay in the library)."""
    return _change_album(db, models, owner, album_id, body, album_service.remove_photos)


def _change_album(
    db: SessionDep,
    models: ModelsDep,
    owner: str,
    album_id: str,
    body: PhotoSelection,
    change: Callable[..., int],
) -> AlbumPhotosChanged:
    """Add or remove the selected photos; the album (404 for another owner's) with its new counts."""
    album_service.get_album(db, owner_id=owner, album_id=album_id)
    changed = change(db, owner_id=owner, album_id=album_id, photo_ids=_selected(db, models, owner, body))
    row = album_service.get_album(db, owner_id=owner, album_id=album_id)
    return AlbumPhotosChanged(album=album_out(db, [row])[0], changed=changed)


# ---- trash ---------------------------------------------------------------------------------------


@trash.get("", name="list", response_model=Page[Photo], responses=PROBLEMS)
def list_trash(db: SessionDep, owner: CurrentOwner, paging: PagingDep) -> Page[Photo]:
    """Photos in the trash, most recently trashed first."""
    rows, next_cursor = trash_service.list_trash(db, owner_id=owner, limit=paging.limit, cursor=paging.cursor)
    return Page[Photo](items=[photo_from_view(v) for v in photo_views(db, rows)], next_cursor=next_cursor)


@trash.post("/restore", name="restore", response_model=Page[Photo], responses=PROBLEMS)
def restore(db: SessionDep, owner: CurrentOwner, body: TrashRestore) -> Page[Photo]:
    """Take photos out of the trash, whole: tags, faces, names and albums were kept."""
    rows = trash_service.restore_photos(db, owner_id=owner, photo_ids=body.photo_ids)
    return Page[Photo](items=[photo_from_view(v) for v in photo_views(db, rows)], next_cursor=None)


@trash.delete("", name="empty", response_model=TrashEmptied, responses=PROBLEMS)
def empty_trash(
    db: SessionDep, owner: CurrentOwner, store: StoreDep, body: TrashRestore | None = None
) -> TrashEmptied:
    """Purge the whole trash now, or only `photo_ids`; bytes go when no other photo uses them."""
    purged = trash_service.empty_trash(
        db, store, owner_id=owner, photo_ids=body.photo_ids if body is not None else None
    )
    return TrashEmptied(purged=purged)


# ---- bulk ----------------------------------------------------------------------------------------


@bulk.post(
    "/bulk",
    name="bulk",
    response_model=BulkResult,
    responses={202: {"model": BulkResult, "description": "started as a job"}, **PROBLEMS},
)
def bulk_edit(
    db: SessionDep,
    models: ModelsDep,
    owner: CurrentOwner,
    settings: SettingsDep,
    runner: JobRunnerDep,
    body: BulkRequest,
) -> Response:
    """Apply operations to a selection in one transaction, with a result per photo; larger selections
    than the synchronous limit run as a job (202)."""
    operations = body.operations.model_dump(exclude_unset=True)
    if body.operations.restore:
        if body.photo_ids is None:
            raise Invalid(
                "restore takes photo_ids (trashed photos match no search)", errors=[{"field": "photo_ids"}]
            )
        photo_ids = list(body.photo_ids)
    else:
        photo_ids = _selected(db, models, owner, body)
    if len(photo_ids) > settings.bulk_sync_max:
        job = bulk_service.start_bulk_job(db, owner_id=owner, photo_ids=photo_ids, operations=operations)
        if runner is not None:
            runner.wake()
        result = BulkResult(job=Job.model_validate(job, from_attributes=True))
        return JSONResponse(result.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
    results = bulk_service.bulk_edit(db, owner_id=owner, photo_ids=photo_ids, operations=operations)
    body_out = BulkResult(
        results=[BulkPhotoResult(photo_id=r.photo_id, status=r.status, notes=r.notes) for r in results]
    )
    return JSONResponse(body_out.model_dump(mode="json"))


# ---- timeline, places, map, facets ---------------------------------------------------------------


@library.get("/timeline", name="timeline", response_model=Timeline, responses=PROBLEMS)
def timeline(
    db: SessionDep,
    owner: CurrentOwner,
    filters: FiltersDep,
    bucket: timeline_service.Bucket = "month",
    order: Annotated[str, Query(pattern="^-?taken_at$")] = "-taken_at",
) -> Response:
    """Photo counts per year, month or day of capture (camera wall time), with every photo filter;
    newest first (`order=taken_at`: oldest first); undated photos last, in a `null` bucket."""
    key = ("timeline", filters.model_dump_json(), bucket, order)

    def body() -> bytes:
        rows = timeline_service.timeline(
            db, owner_id=owner, filters=filters, bucket=bucket, newest_first=order.startswith("-")
        )
        # Serialised once and kept: by day, 100 000 photos make 9 000 buckets, and building and
        # re-validating a model for each cost more than counting them.
        items = [{"bucket": r.bucket, "count": r.count, "first_photo_id": r.first_photo_id} for r in rows]
        return to_json({"items": items})

    return Response(cached(db, owner, key, body), media_type="application/json")


@library.get("/places", name="places", response_model=Page[PlaceItem], responses=PROBLEMS)
def places(db: SessionDep, owner: CurrentOwner, filters: FiltersDep, paging: PagingDep) -> Page[PlaceItem]:
    """Named places (city, region, country) with photo counts and a representative photo."""
    rows, next_cursor = place_service.places(
        db, owner_id=owner, filters=filters, limit=paging.limit, cursor=paging.cursor
    )
    return Page[PlaceItem](
        items=[PlaceItem(**vars(row)) for row in rows],
        next_cursor=next_cursor,
    )


@library.get("/map", name="map", response_model=MapClusters, responses=PROBLEMS)
def map_clusters(
    db: SessionDep,
    owner: CurrentOwner,
    filters: FiltersDep,
    bbox: Annotated[str, Query(max_length=200, description="west,south,east,north in degrees")],
    zoom: Annotated[int, Query(ge=0, le=place_service.MAX_ZOOM, description="web-map zoom level")] = 3,
) -> MapClusters:
    """Clusters of located photos in the box: a grid whose cells halve with each zoom level."""
    rows = place_service.map_clusters(
        db, owner_id=owner, filters=filters, bbox=place_service.parse_bbox(bbox), zoom=zoom
    )
    return MapClusters(
        items=[
            MapCluster(
                lat=r.lat,
                lon=r.lon,
                count=r.count,
                photo_id=r.photo_id,
                bbox=[r.west, r.south, r.east, r.north],
            )
            for r in rows
        ],
        zoom=zoom,
        cell_degrees=place_service.cell_degrees(zoom),
    )


@library.get("/facets", name="facets", response_model=Facets, responses=PROBLEMS)
def facets(
    db: SessionDep,
    owner: CurrentOwner,
    filters: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=200, description="values per facet")] = 20,
) -> Facets:
    """Photo counts per tag (by kind), person, camera, year, place, favourite and rating, for the
    photos the filters leave."""
    key = ("facets", filters.model_dump_json(), limit)
    counts = cached(
        db, owner, key, lambda: facet_service.facets(db, owner_id=owner, filters=filters, limit=limit)
    )
    return Facets(**counts)
