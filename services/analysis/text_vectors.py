"""Each analysed photo's vector in the sentence space (the alignment head's), kept current.

Analysis stores the vector under the head's versioned name (services/inference/alignment.py). When the
head file changes (retrained), photos analysed before hold only an old vector: a maintenance pass of
the job runner finds them and queues an `embed_text` job, which re-embeds them from their originals
(the image feature needs the pixels) and drops the old vectors. Search reads only the current name's
vectors, so old and new never mix; until a photo is re-embedded it is ranked by its words and summary.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from core.errors import ModelMissing
from core.events import photos_changed
from db.models import Job, Photo, PhotoEmbedding
from services.inference.labels import ImageLabeler
from services.inference.models import ModelSet
from services.jobs.service import ACTIVE_STATES, JobContext, JobType, create_job, register_job_type
from services.photos.images import ANALYSIS_MAX_SIDE, load_oriented
from services.photos.service import get_photos

log = logging.getLogger(__name__)

JOB_TYPE = "embed_text"
BATCH_SIZE = 16
# Photos queued per job by the maintenance pass; the next pass picks up the rest.
MAX_ITEMS_PER_JOB = 5000


@dataclass(frozen=True)
class SquashedViews:
    """The photos squashed to the image model's square, embedded once: the sentence-space vectors
    come from them, and the rotation head reads them as its upright views."""

    embeddings: np.ndarray  # [N, D] unit
    vectors: np.ndarray  # [N, dim] in the sentence space
    image_model: ImageLabeler


def squashed_views(images: list[Image.Image], models: ModelSet) -> SquashedViews | None:
    """The batch squashed and embedded once, with its sentence-space vectors; None when the
    alignment head is not installed (the rotation check then embeds the upright view itself)."""
    try:
        aligner = models.alignment
    except ModelMissing as missing:
        log.warning("photos analysed without their sentence-space vector: %s", missing.detail)
        return None
    embeddings = aligner.image_embeddings(images)
    return SquashedViews(embeddings, aligner.project(embeddings), aligner.image_model)


def current_model_name(models: ModelSet) -> str | None:
    """The versioned name vectors are stored under now; None when the head is not installed."""
    try:
        return models.alignment.model_name
    except ModelMissing:
        return None


def store_text_vector(db: Session, photo: Photo, vector: np.ndarray, model_name: str) -> None:
    """Store the photo's vector under model_name; vectors of earlier versions of the head go."""
    family = model_name.split("@", 1)[0]
    db.execute(
        delete(PhotoEmbedding).where(
            PhotoEmbedding.photo_id == photo.id,
            PhotoEmbedding.model.like(f"{family}@%"),
            PhotoEmbedding.model != model_name,
        )
    )
    data = np.asarray(vector, dtype=np.float32)
    db.merge(
        PhotoEmbedding(
            photo_id=photo.id,
            model=model_name,
            owner_id=photo.owner_id,
            dim=data.shape[0],
            vector=data.tobytes(),
        )
    )


def stale_photo_ids(db: Session, owner_id: str, model_name: str, limit: int = MAX_ITEMS_PER_JOB) -> list[str]:
    """Analysed photos of the owner without a vector of the current head."""
    current = exists().where(PhotoEmbedding.photo_id == Photo.id, PhotoEmbedding.model == model_name)
    query = (
        select(Photo.id)
        .where(Photo.owner_id == owner_id, Photo.analysis_state == "done", ~current)
        .order_by(Photo.id)
        .limit(limit)
    )
    return list(db.scalars(query))


def embed_text_batch(
    context: JobContext, owner_id: str, photo_ids: list[str], params: dict[str, Any]
) -> dict[str, str]:
    """Job handler: re-embed photos from their originals with the current head."""
    aligner = context.models.alignment
    errors: dict[str, str] = {}
    with context.sessions() as db:
        found = get_photos(db, owner_id=owner_id, photo_ids=photo_ids)
        sources = {photo.id: photo.sha256 for photo in found}
    images = {}
    for photo_id in photo_ids:
        if photo_id not in sources:
            errors[photo_id] = "photo no longer exists"
            continue
        try:
            images[photo_id] = load_oriented(
                context.store.read(sources[photo_id]), max_side=ANALYSIS_MAX_SIDE
            )
        except Exception as exc:  # one unreadable photo must not sink the batch
            errors[photo_id] = f"could not decode the original: {exc}"
    ids = list(images)
    vectors = aligner.embed([images[i] for i in ids])
    with context.sessions() as db:
        photos = {photo.id: photo for photo in get_photos(db, owner_id=owner_id, photo_ids=ids)}
        for photo_id, vector in zip(ids, vectors, strict=True):
            if photo_id in photos:
                store_text_vector(db, photos[photo_id], vector, aligner.model_name)
        photos_changed(db, owner_id, list(photos))
        db.commit()
    return errors


def queue_stale_text_vectors(context: JobContext) -> None:
    """Maintenance pass: one `embed_text` job per owner whose photos lack the current head's vector."""
    model_name = current_model_name(context.models)
    if model_name is None:
        return
    with context.sessions() as db:
        busy = select(Job.owner_id).where(Job.type == JOB_TYPE, Job.state.in_(ACTIVE_STATES))
        owners = db.scalars(
            select(Photo.owner_id)
            .where(Photo.analysis_state == "done", Photo.owner_id.not_in(busy))
            .where(~exists().where(PhotoEmbedding.photo_id == Photo.id, PhotoEmbedding.model == model_name))
            .distinct()
        ).all()
        for owner_id in owners:
            stale = stale_photo_ids(db, owner_id, model_name)
            if stale:
                create_job(db, owner_id=owner_id, type=JOB_TYPE, items=stale)
                log.info(
                    "queued re-embedding of %d photos of owner %s for %s", len(stale), owner_id, model_name
                )
        db.commit()


def register() -> None:
    register_job_type(
        JobType(
            name=JOB_TYPE,
            handler=embed_text_batch,
            batch_size=lambda settings: BATCH_SIZE,
            queue="analysis",
            splittable=True,
        )
    )
