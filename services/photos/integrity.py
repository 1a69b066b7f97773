"""The `verify` job: re-hash stored originals and report missing or corrupted blobs."""

import logging
from typing import Any

from sqlalchemy import select

from core.storage import sha256_hex
from db.models import Photo
from services.jobs.service import JobContext, JobType, register_job_type
from services.photos.service import owner_photo_ids

log = logging.getLogger(__name__)


def verify_batch(
    context: JobContext, owner_id: str, photo_ids: list[str], params: dict[str, Any]
) -> dict[str, str]:
    errors: dict[str, str] = {}
    with context.sessions() as db:
        rows = db.execute(
            select(Photo.id, Photo.sha256).where(Photo.owner_id == owner_id, Photo.id.in_(photo_ids))
        ).all()
    known = dict(rows)
    for photo_id in photo_ids:
        sha256 = known.get(photo_id)
        if sha256 is None:
            errors[photo_id] = "photo no longer exists"
        elif not context.store.exists(sha256):
            errors[photo_id] = "original is missing from storage"
        elif sha256_hex(context.store.read(sha256)) != sha256:
            errors[photo_id] = "original is corrupted: its sha256 no longer matches"
            log.error("blob %s of photo %s is corrupted", sha256, photo_id)
    return errors


def register() -> None:
    register_job_type(
        JobType(
            name="verify",
            handler=verify_batch,
            batch_size=lambda s: 16,
            default_items=owner_photo_ids,
            splittable=True,
        )
    )
