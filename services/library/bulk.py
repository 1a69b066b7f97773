"""Bulk edits: one set of operations over a selection of photos, in one transaction, with a result
per photo. Above `bulk_sync_max` photos the edit runs as a job (one transaction per batch)."""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Invalid, NotFound, ShoeboxError
from core.events import photos_changed
from db.enums import TagState
from db.models import Job, Photo
from services.jobs.service import JobContext, JobType, create_job, register_job_type
from services.library.albums import add_to_album, get_album, remove_from_album
from services.library.trash import move_to_trash, take_out_of_trash
from services.photos.service import set_user_fields
from services.tagging.service import stage_tag_removal, stage_tag_state, stage_user_tag, tags_named

BULK_BATCH = 500
FIELD_OPERATIONS = ("favorite", "rating", "archived", "rotation", "caption")


@dataclass
class PhotoResult:
    photo_id: str
    status: str  # updated | unchanged | failed
    notes: list[str] = field(default_factory=list)


def bulk_photos(db: Session, owner_id: str, photo_ids: list[str], *, restoring: bool) -> list[Photo]:
    """The owner's photos among these ids: trashed ones when restoring, others otherwise."""
    wanted = list(dict.fromkeys(photo_ids))
    state = Photo.trashed_at.is_not(None) if restoring else Photo.trashed_at.is_(None)
    rows = {
        p.id: p
        for p in db.scalars(select(Photo).where(Photo.owner_id == owner_id, Photo.id.in_(wanted), state))
    }
    missing = [pid for pid in wanted if pid not in rows]
    if missing:
        raise NotFound(f"no photo with id {missing[0]!r}", errors=[{"photo_id": pid} for pid in missing[:50]])
    return [rows[pid] for pid in wanted]


def apply_operations(
    db: Session, owner_id: str, photos: list[Photo], operations: dict[str, Any]
) -> list[PhotoResult]:
    """Apply the operations to the photos in the caller's transaction (no commit)."""
    results = {photo.id: PhotoResult(photo_id=photo.id, status="unchanged") for photo in photos}
    ids = [photo.id for photo in photos]

    def changed(photo_id: str, note: str) -> None:
        results[photo_id].status = "updated"
        results[photo_id].notes.append(note)

    fields = {name: operations[name] for name in FIELD_OPERATIONS if name in operations}
    if fields:
        for photo in photos:
            set_user_fields(photo, fields)
            changed(photo.id, "fields")
    for name in operations.get("add_tags") or []:
        for photo in photos:
            stage_user_tag(db, photo, name)
            changed(photo.id, f"tag {name} added")
    for key, verb in (("remove_tags", "removed"), ("confirm_tags", "confirmed"), ("reject_tags", "rejected")):
        for name in operations.get(key) or []:
            named = tags_named(db, ids, name)
            for photo_id in ids:
                tags = named.get(photo_id)
                if not tags:
                    results[photo_id].notes.append(f"no tag {name}")
                    continue
                if key == "remove_tags":
                    stage_tag_removal(db, tags)
                else:
                    stage_tag_state(
                        tags, name, TagState.confirmed if key == "confirm_tags" else TagState.rejected
                    )
                changed(photo_id, f"tag {name} {verb}")
    if album_id := operations.get("add_to_album"):
        add_to_album(db, get_album(db, owner_id=owner_id, album_id=album_id), ids)
        for photo_id in ids:
            changed(photo_id, "added to album")
    if album_id := operations.get("remove_from_album"):
        remove_from_album(db, get_album(db, owner_id=owner_id, album_id=album_id), ids)
        for photo_id in ids:
            changed(photo_id, "removed from album")
    if operations.get("restore"):
        take_out_of_trash(db, owner_id, photos)
        for photo_id in ids:
            changed(photo_id, "restored")
    if operations.get("trash"):
        move_to_trash(db, owner_id, photos)
        for photo_id in ids:
            changed(photo_id, "trashed")
    elif not operations.get("restore"):
        photos_changed(db, owner_id, ids)
    return [results[photo.id] for photo in photos]


def check_operations(operations: dict[str, Any]) -> None:
    if operations.get("trash") and operations.get("restore"):
        raise Invalid("trash and restore exclude each other", errors=[{"field": "operations"}])
    if not any(value not in (None, [], False) for value in operations.values()):
        raise Invalid("no operation given", errors=[{"field": "operations"}])


def bulk_edit(
    db: Session, *, owner_id: str, photo_ids: list[str], operations: dict[str, Any]
) -> list[PhotoResult]:
    """Everything in one transaction: a failing operation changes nothing."""
    check_operations(operations)
    photos = bulk_photos(db, owner_id, photo_ids, restoring=bool(operations.get("restore")))
    try:
        results = apply_operations(db, owner_id, photos, operations)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return results


def start_bulk_job(db: Session, *, owner_id: str, photo_ids: list[str], operations: dict[str, Any]) -> Job:
    check_operations(operations)
    if operations.get("add_to_album"):
        get_album(db, owner_id=owner_id, album_id=operations["add_to_album"])
    if operations.get("remove_from_album"):
        get_album(db, owner_id=owner_id, album_id=operations["remove_from_album"])
    job = create_job(db, owner_id=owner_id, type="bulk", items=photo_ids, params={"operations": operations})
    db.commit()
    return job


def bulk_batch(
    context: JobContext, owner_id: str, photo_ids: list[str], params: dict[str, Any]
) -> dict[str, str]:
    """One batch of a bulk job in one transaction; photos gone meanwhile are reported, not fatal."""
    operations = params.get("operations") or {}
    errors: dict[str, str] = {}
    with context.sessions() as db:
        restoring = bool(operations.get("restore"))
        state = Photo.trashed_at.is_not(None) if restoring else Photo.trashed_at.is_(None)
        photos = list(
            db.scalars(select(Photo).where(Photo.owner_id == owner_id, Photo.id.in_(photo_ids), state))
        )
        found = {photo.id for photo in photos}
        errors.update({pid: "photo no longer selectable" for pid in photo_ids if pid not in found})
        try:
            check_operations(operations)
            apply_operations(db, owner_id, photos, operations)
            db.commit()
        except ShoeboxError as error:
            db.rollback()
            errors.update({photo.id: error.detail for photo in photos})
    return errors


def register() -> None:
    register_job_type(JobType(name="bulk", handler=bulk_batch, batch_size=lambda settings: BULK_BATCH))
