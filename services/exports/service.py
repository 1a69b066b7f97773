"""Exports: a zip of photos with tags, people and face regions written into copies of the files.

The export job writes each photo's tagged copy to a staging folder batch by batch (so it resumes
after a restart), then streams the staged files into one zip on disk: memory stays flat however
many photos there are. Originals in the blob store are only ever read.
"""

import csv
import io
import json
import logging
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, literal, or_, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import Conflict, Invalid, NotFound
from core.pagination import decode_cursor, encode_cursor
from core.storage import atomic_write
from db.models import Album, AlbumPhoto, Export, Face, Person, Photo, PhotoTag
from db.owned import get_owned
from db.types import utcnow
from services.exports.metadata_writer import (
    FaceRegion,
    PhotoMetadata,
    compose_orientation,
    rotate_box,
    write_metadata,
)
from services.exports.zipstream import ZipEntry, safe_unique_name, write_zip
from services.inference.models import ModelSet
from services.jobs.service import JobContext, JobType, create_job, get_job, register_job_type
from services.photos.filters import PhotoFilters
from services.photos.selection import MAX_SELECTION, select_photo_ids
from services.photos.service import get_photos

log = logging.getLogger(__name__)

EXPORT_TTL = timedelta(hours=24)
MAX_EXPORT_PHOTOS = MAX_SELECTION
CHUNK_BYTES = 1 << 20
# Suggested (unreviewed) model output goes into files only when the model was this sure.
MIN_SUGGESTED_TAG_CONFIDENCE = 0.5
MIN_MODEL_FACE_CONFIDENCE = 0.5


def export_dir(settings: Settings) -> Path:
    return settings.data_dir / "exports"


def zip_path(settings: Settings, export_id: str) -> Path:
    return export_dir(settings) / f"{export_id}.zip"


def staging_dir(settings: Settings, export_id: str) -> Path:
    return export_dir(settings) / export_id


def create_export(db: Session, *, owner_id: str, photo_ids: list[str], request: dict[str, Any]) -> Export:
    if not photo_ids:
        raise Invalid("the export selects no photos", errors=[{"field": "photo_ids"}])
    if len(photo_ids) > MAX_EXPORT_PHOTOS:
        raise Invalid(f"an export holds at most {MAX_EXPORT_PHOTOS} photos", errors=[{"field": "photo_ids"}])
    photos = get_photos(db, owner_id=owner_id, photo_ids=photo_ids)
    used: set[str] = {"manifest.json", "manifest.csv"}
    entries: dict[str, str] = {}
    for photo in photos:
        name = safe_unique_name(photo.filename, used)
        # Reserve the sidecar name too, so `a.gif.xmp` never collides with another file.
        used.add(f"{name}.xmp".casefold())
        entries[photo.id] = name
    export = Export(owner_id=owner_id, request=request, entries=entries, expires_at=utcnow() + EXPORT_TTL)
    db.add(export)
    db.flush()
    job = create_job(
        db, owner_id=owner_id, type="export", items=list(entries), params={"export_id": export.id}
    )
    export.job_id = job.id
    db.commit()
    return export


def start_export(
    db: Session,
    models: ModelSet,
    *,
    owner_id: str,
    photo_ids: list[str] | None,
    filters: PhotoFilters | None,
    query: str | None,
    request: dict[str, Any],
) -> Export:
    """An export of the photos chosen by id, by filters, or by a text search with filters."""
    selected = select_photo_ids(
        db, models, owner_id=owner_id, photo_ids=photo_ids, filters=filters, query=query
    )
    return create_export(db, owner_id=owner_id, photo_ids=selected, request=request)


def list_exports(
    db: Session, *, owner_id: str, limit: int, cursor: str | None = None
) -> tuple[list[Export], str | None]:
    """The owner's exports, newest first, keyset-paged (expired ones too, until cleaned up)."""
    query = select(Export).where(Export.owner_id == owner_id)
    if cursor:
        created, last_id = decode_cursor(cursor, (datetime, str))
        bound = literal(created, type_=Export.created_at.type)
        query = query.where(
            or_(Export.created_at < bound, and_(Export.created_at == bound, Export.id < last_id))
        )
    rows = list(db.scalars(query.order_by(Export.created_at.desc(), Export.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor([last.created_at.isoformat(), last.id])


def get_export(db: Session, *, owner_id: str, export_id: str) -> Export:
    return get_owned(db, Export, owner_id=owner_id, row_id=export_id, what="export")


@dataclass(frozen=True)
class ExportProgress:
    state: str
    total: int
    done: int
    failed: int
    errors: list[dict[str, Any]]


def export_search(export: Export) -> dict[str, Any] | None:
    """The search an export's photos were chosen by (the filters and words that were set), or None when
    they were chosen by id."""
    search = (export.request or {}).get("search")
    if not isinstance(search, dict):
        return None
    return {key: value for key, value in search.items() if value not in (None, [], "")}


def export_progress(db: Session, export: Export) -> ExportProgress:
    """What a client sees of an export: its own state, or its job's when the job ended badly."""
    job = get_job(db, owner_id=export.owner_id, job_id=export.job_id) if export.job_id else None
    state = export.state
    if job is not None and job.state in ("cancelled", "failed") and state not in ("ready", "expired"):
        state = job.state
    errors = list(job.errors) if job else []
    if export.error:
        errors.append({"item": None, "error": export.error})
    return ExportProgress(
        state=state,
        total=job.total if job else len(export.entries),
        done=job.done if job else 0,
        failed=job.failed if job else 0,
        errors=errors,
    )


def ready_zip(db: Session, settings: Settings, *, owner_id: str, export_id: str) -> tuple[Path, str]:
    """The finished zip's path and download name; 404 once expired, 409 while not ready."""
    export = get_export(db, owner_id=owner_id, export_id=export_id)
    if export.state == "expired":
        raise NotFound(f"export {export_id} has expired; create a new one")
    if export.state != "ready":
        raise Conflict(f"export {export_id} is {export.state}, not ready yet")
    return zip_path(settings, export.id), f"shoebox-export-{export.created_at:%Y%m%d-%H%M%S}.zip"


def photo_metadata(db: Session, photos: list[Photo]) -> dict[str, PhotoMetadata]:
    """What goes into each file: reviewed or confident tags, people, named face regions, caption,
    rating and album names."""
    ids = [photo.id for photo in photos]
    tags: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for tag in db.scalars(select(PhotoTag).where(PhotoTag.photo_id.in_(ids), PhotoTag.state != "rejected")):
        if tag.state == "confirmed" or (tag.confidence or 0) >= MIN_SUGGESTED_TAG_CONFIDENCE:
            tags[tag.photo_id].append((tag.name, tag.kind))
    faces: dict[str, list[tuple[Face, str]]] = defaultdict(list)
    rows = db.execute(
        select(Face, Person.name).join(Person, Face.person_id == Person.id).where(Face.photo_id.in_(ids))
    )
    for face, name in rows:
        if face.person_source == "user" or (face.person_confidence or 0) >= MIN_MODEL_FACE_CONFIDENCE:
            faces[face.photo_id].append((face, name))
    albums: dict[str, list[str]] = defaultdict(list)
    for photo_id, album_name in db.execute(
        select(AlbumPhoto.photo_id, Album.name)
        .join(Album, Album.id == AlbumPhoto.album_id)
        .where(AlbumPhoto.photo_id.in_(ids))
        .order_by(Album.name)
    ):
        albums[photo_id].append(album_name)
    result: dict[str, PhotoMetadata] = {}
    for photo in photos:
        named = faces[photo.id]
        result[photo.id] = PhotoMetadata(
            tags=tuple(tags[photo.id]),
            people=tuple(dict.fromkeys(name for _, name in named)),
            caption=photo.caption,
            faces=tuple(
                FaceRegion(name=name, box=rotate_box((f.box_x, f.box_y, f.box_w, f.box_h), photo.rotation))
                for f, name in named
            ),
            orientation=compose_orientation(photo.orientation, photo.rotation),
            rating=photo.rating or None,
            albums=tuple(albums[photo.id]),
        )
    return result


def _manifest_row(photo: Photo, name: str, meta: PhotoMetadata, sidecar: bool) -> dict[str, Any]:
    return {
        "file": name,
        "sidecar": f"{name}.xmp" if sidecar else None,
        "photo_id": photo.id,
        "original_filename": photo.filename,
        "sha256_original": photo.sha256,
        "content_type": photo.content_type,
        "taken_at": photo.taken_at.isoformat() if photo.taken_at else None,
        "taken_at_offset": photo.taken_at_offset,
        "gps": {"lat": photo.gps_lat, "lon": photo.gps_lon, "alt": photo.gps_alt}
        if photo.gps_lat is not None
        else None,
        "camera": " ".join(p for p in (photo.camera_make, photo.camera_model) if p) or None,
        "caption": photo.caption,
        "tags": sorted({name for name, _ in meta.tags}),
        "people": list(meta.people),
    }


def export_batch(
    context: JobContext, owner_id: str, photo_ids: list[str], params: dict[str, Any]
) -> dict[str, str]:
    export_id = params["export_id"]
    stage = staging_dir(context.settings, export_id)
    errors: dict[str, str] = {}
    with context.sessions() as db:
        export = db.get(Export, export_id)
        if export is None:
            return {pid: "the export was deleted" for pid in photo_ids}
        if export.state == "queued":
            export.state = "running"
            db.commit()
        photos = get_photos(db, owner_id=owner_id, photo_ids=photo_ids)
        metadata = photo_metadata(db, photos)
        names = dict(export.entries)
    for photo in photos:
        name = names[photo.id]
        try:
            original = context.store.read(photo.sha256)
            written = write_metadata(original, photo.content_type, metadata[photo.id])
            atomic_write(stage / "files" / name, written.data)
            if written.sidecar_xmp is not None:
                atomic_write(stage / "files" / f"{name}.xmp", written.sidecar_xmp)
            row = _manifest_row(photo, name, metadata[photo.id], written.sidecar_xmp is not None)
            atomic_write(stage / "rows" / f"{photo.id}.json", json.dumps(row).encode())
        except FileNotFoundError:
            errors[photo.id] = "the original is missing from storage"
        except Exception as exc:  # one bad file must not sink the export
            log.exception("export %s: photo %s failed", export_id, photo.id)
            errors[photo.id] = f"could not write metadata: {exc}"
    for photo_id in photo_ids:
        if photo_id not in {p.id for p in photos}:
            errors[photo_id] = "photo no longer exists"
    return errors


def _file_chunks(path: Path) -> Any:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def finish_export(context: JobContext, owner_id: str, params: dict[str, Any]) -> None:
    """Stream the staged files into the zip, add manifest.json and manifest.csv, drop the staging."""
    export_id = params["export_id"]
    settings = context.settings
    stage = staging_dir(settings, export_id)
    with context.sessions() as db:
        export = db.get(Export, export_id)
        if export is None:
            return
        order = list(export.entries.items())
    rows = [
        json.loads((stage / "rows" / f"{photo_id}.json").read_text())
        for photo_id, _ in order
        if (stage / "rows" / f"{photo_id}.json").is_file()
    ]

    def entries() -> Any:
        for row in rows:
            yield ZipEntry(row["file"], _file_chunks(stage / "files" / row["file"]))
            if row["sidecar"]:
                yield ZipEntry(row["sidecar"], _file_chunks(stage / "files" / row["sidecar"]))
        yield ZipEntry(
            "manifest.json", json.dumps({"export_id": export_id, "photos": rows}, indent=1).encode()
        )
        yield ZipEntry("manifest.csv", _manifest_csv(rows))

    if not rows:
        with context.sessions() as db:
            export = db.get(Export, export_id)
            if export is not None:
                export.state, export.error, export.finished_at = (
                    "failed",
                    "no photo could be exported",
                    utcnow(),
                )
                db.commit()
        shutil.rmtree(stage, ignore_errors=True)
        return
    write_zip(zip_path(settings, export_id), entries())
    # The archive's own byte size (write_zip answers its entry count).
    size = zip_path(settings, export_id).stat().st_size
    shutil.rmtree(stage, ignore_errors=True)
    with context.sessions() as db:
        export = db.get(Export, export_id)
        if export is not None:
            export.state = "ready"
            export.size_bytes = size
            export.finished_at = utcnow()
            db.commit()
    log.info("export %s ready: %d photos, %d bytes", export_id, len(rows), size)


def _manifest_csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    columns = [
        "file",
        "sidecar",
        "photo_id",
        "original_filename",
        "taken_at",
        "lat",
        "lon",
        "camera",
        "caption",
        "tags",
        "people",
    ]
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **{
                    key: row[key]
                    for key in (
                        "file",
                        "sidecar",
                        "photo_id",
                        "original_filename",
                        "taken_at",
                        "camera",
                        "caption",
                    )
                },
                "lat": row["gps"]["lat"] if row["gps"] else None,
                "lon": row["gps"]["lon"] if row["gps"] else None,
                "tags": ";".join(row["tags"]),
                "people": ";".join(row["people"]),
            }
        )
    return buffer.getvalue().encode()


def cleanup_expired_exports(db: Session, settings: Settings) -> int:
    """Expired exports lose their files; the row stays (state "expired") so a link answers clearly."""
    expired = list(db.scalars(select(Export).where(Export.expires_at < utcnow(), Export.state != "expired")))
    for export in expired:
        zip_path(settings, export.id).unlink(missing_ok=True)
        shutil.rmtree(staging_dir(settings, export.id), ignore_errors=True)
        export.state = "expired"
    db.commit()
    return len(expired)


def cleanup_task(context: JobContext) -> None:
    with context.sessions() as db:
        removed = cleanup_expired_exports(db, context.settings)
    if removed:
        log.info("removed %d expired exports", removed)


def register() -> None:
    register_job_type(
        JobType(
            name="export", handler=export_batch, batch_size=lambda settings: 16, on_finished=finish_export
        )
    )
