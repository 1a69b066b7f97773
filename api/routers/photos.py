"""Photos: upload, list, get, patch, delete, original, thumbnail."""

from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Request, Response, UploadFile, status
from fastapi.responses import FileResponse, JSONResponse

import services.analysis.service as analysis
import services.library.trash as trash_service
import services.photos.service as photo_service
from api.deps import CurrentOwner, FiltersDep, JobRunnerDep, PagingDep, SessionDep, SettingsDep, StoreDep
from api.errors import problem_from_error, problem_responses
from api.http import http_date, not_modified
from api.openapi import binary_content
from schemas.common import Page, Problem
from schemas.photos import (
    ObjectDetection,
    Photo,
    PhotoPage,
    PhotoPatch,
    UploadResponse,
    UploadResult,
    photo_from_view,
)
from services.photos.geometry import rotate_box
from services.photos.service import PhotoSort
from services.photos.views import photo_view, photo_views

router = APIRouter(prefix="/v1/photos", tags=["photos"])


class ThumbnailSize(IntEnum):
    small = 256
    large = 1024


PROBLEMS = problem_responses({404: "no such photo for this owner"})
# What an upload may be stored as (sniffed from its bytes); the original answers with its own type.
IMAGE_MEDIA_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/tiff",
    "image/heic",
    "image/heif",
    "image/gif",
    "image/avif",
)


@router.post(
    "",
    name="upload",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadResponse,
    responses={
        200: {"model": UploadResponse, "description": "only duplicates"},
        **PROBLEMS,
        413: {"model": Problem},
        415: {"model": Problem},
    },
)
def upload(
    request: Request,
    db: SessionDep,
    owner: CurrentOwner,
    store: StoreDep,
    settings: SettingsDep,
    runner: JobRunnerDep,
    files: Annotated[list[UploadFile], File(description="one or more image files")],
) -> Response:
    """Upload photos. Each file answers created, duplicate (with the existing photo) or rejected."""
    batch = photo_service.upload_photos(db, store, settings, owner_id=owner, files=files)
    outcomes = batch.outcomes
    results = [
        UploadResult(
            filename=outcome.filename,
            status=outcome.status,
            photo=photo_from_view(photo_view(db, outcome.photo)) if outcome.photo else None,
            error=Problem(**problem_from_error(outcome.error, request)) if outcome.error else None,
        )
        for outcome in outcomes
    ]
    created = any(outcome.status == "created" for outcome in outcomes)
    if created and runner is not None:
        runner.wake()
    body = UploadResponse(results=results, job_id=batch.job_id).model_dump(mode="json")
    return JSONResponse(body, status_code=201 if created else 200)


@router.get("", name="list", response_model=PhotoPage, responses=PROBLEMS)
def list_photos(
    db: SessionDep,
    owner: CurrentOwner,
    paging: PagingDep,
    filters: FiltersDep,
    sort: PhotoSort = "-taken_at",
    include_total: bool = False,
) -> PhotoPage:
    """List the owner's photos with filters, sorted, paginated by cursor; `include_total=true` adds
    how many photos pass the filters."""
    rows, next_cursor = photo_service.list_photos(
        db, owner_id=owner, filters=filters, sort=sort, limit=paging.limit, cursor=paging.cursor
    )
    total = photo_service.count_photos(db, owner_id=owner, filters=filters) if include_total else None
    return PhotoPage(
        items=[photo_from_view(v) for v in photo_views(db, rows)], next_cursor=next_cursor, total=total
    )


@router.get("/{photo_id}", name="get", response_model=Photo, responses=PROBLEMS)
def get_photo(db: SessionDep, owner: CurrentOwner, photo_id: str) -> Photo:
    """One photo with its metadata, tags and analysis state."""
    row = photo_service.get_photo(db, owner_id=owner, photo_id=photo_id)
    return photo_from_view(photo_view(db, row))


@router.patch("/{photo_id}", name="update", response_model=Photo, responses=PROBLEMS)
def patch_photo(db: SessionDep, owner: CurrentOwner, photo_id: str, patch: PhotoPatch) -> Photo:
    """Set user fields: `rotation` (0/90/180/270, clockwise), `caption`, `favorite`, `rating` (0-5),
    `archived`."""
    row = photo_service.update_photo(
        db, owner_id=owner, photo_id=photo_id, changes=patch.model_dump(exclude_unset=True)
    )
    return photo_from_view(photo_view(db, row))


@router.delete("/{photo_id}", name="delete", status_code=status.HTTP_204_NO_CONTENT, responses=PROBLEMS)
def delete_photo(db: SessionDep, owner: CurrentOwner, photo_id: str) -> Response:
    """Move a photo to the trash: hidden everywhere, restorable until it is purged."""
    trash_service.trash_photo(db, owner_id=owner, photo_id=photo_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{photo_id}/detections", name="detections", response_model=Page[ObjectDetection], responses=PROBLEMS
)
def list_detections(db: SessionDep, owner: CurrentOwner, photo_id: str) -> Page[ObjectDetection]:
    """Object boxes the detector found (everything kept as tag evidence), best first."""
    rows = analysis.list_detections(db, owner_id=owner, photo_id=photo_id)
    rotation = photo_service.get_photo(db, owner_id=owner, photo_id=photo_id).rotation
    items = [
        ObjectDetection(
            class_name=r.class_name,
            score=r.score,
            # In the frame of the thumbnails, which carry the user's rotation.
            bbox=rotate_box([r.box_x, r.box_y, r.box_w, r.box_h], rotation),
            model=r.model,
        )
        for r in rows
    ]
    return Page[ObjectDetection](items=items, next_cursor=None)


def _file_response(request: Request, path: Path, media_type: str, etag: str, **options: Any) -> Response:
    """The file, or 304 when the client's copy is current (If-None-Match, else If-Modified-Since)."""
    last_modified = options.pop("last_modified", None) or datetime.fromtimestamp(path.stat().st_mtime, UTC)
    headers = {"ETag": etag, "Last-Modified": http_date(last_modified), **options.pop("headers", {})}
    if not_modified(request, etag, last_modified):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers, **options)


@router.get(
    "/{photo_id}/original",
    name="original",
    response_class=FileResponse,
    responses={
        200: {"content": binary_content(*IMAGE_MEDIA_TYPES), "description": "the original bytes"},
        304: {"description": "not modified (If-None-Match)"},
        **PROBLEMS,
    },
)
def get_original(
    request: Request, db: SessionDep, owner: CurrentOwner, store: StoreDep, photo_id: str
) -> Response:
    """The uploaded bytes, untouched."""
    row = photo_service.get_photo(db, owner_id=owner, photo_id=photo_id)
    return _file_response(
        request,
        photo_service.original_path(store, row),
        row.content_type,
        f'"{row.sha256}"',
        filename=row.filename,
        last_modified=row.uploaded_at,
        headers={"Cache-Control": "private, max-age=31536000, immutable"},
    )


@router.get(
    "/{photo_id}/thumbnail",
    name="thumbnail",
    response_class=FileResponse,
    responses={
        200: {"content": binary_content("image/jpeg"), "description": "a JPEG thumbnail"},
        304: {"description": "not modified (If-None-Match)"},
        **PROBLEMS,
    },
)
def get_thumbnail(
    request: Request,
    db: SessionDep,
    owner: CurrentOwner,
    store: StoreDep,
    photo_id: str,
    size: ThumbnailSize = ThumbnailSize.small,
) -> Response:
    """A JPEG thumbnail with orientation and the user's rotation applied; long side at most `size`."""
    row = photo_service.get_photo(db, owner_id=owner, photo_id=photo_id)
    return _file_response(
        request,
        photo_service.thumbnail_path(store, row, int(size)),
        "image/jpeg",
        f'"{row.sha256}-{int(size)}-{row.rotation}"',
        headers={"Cache-Control": "private, max-age=86400"},
    )


@router.get(
    "/{photo_id}/enhanced",
    name="enhanced",
    response_class=FileResponse,
    responses={
        200: {"content": binary_content("image/jpeg"), "description": "the enhanced JPEG"},
        304: {"description": "not modified (If-None-Match)"},
        **PROBLEMS,
    },
)
def get_enhanced(
    request: Request,
    db: SessionDep,
    owner: CurrentOwner,
    store: StoreDep,
    photo_id: str,
    mode: Literal["low_light"] = "low_light",
) -> Response:
    """A derived image: `low_light` brightens and clears up a dark photo, keeping colours natural.
    Made once and cached; the original is never changed."""
    row = photo_service.get_photo(db, owner_id=owner, photo_id=photo_id)
    return _file_response(
        request,
        photo_service.enhanced_path(store, row, mode),
        "image/jpeg",
        f'"{row.sha256}-{mode}-{row.rotation}"',
        headers={"Cache-Control": "private, max-age=86400"},
    )
