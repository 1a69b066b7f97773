"""The `analyze` job: decode, run the models batched across photos, store detections, tags, embeddings.

Each step is a function of (photos, models) -> rows, so analysis can be re-run at any time: model
output is replaced, the user's tags and decisions are kept.
"""

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.errors import ModelMissing
from core.events import photos_changed
from db.models import Detection, Photo, PhotoAnalysis, PhotoEmbedding
from db.types import utcnow
from services.analysis.text_vectors import SquashedViews, squashed_views, store_text_vector
from services.faces.service import owner_has_labels, store_faces
from services.inference.faces import FaceResult
from services.inference.labels import LabelResult
from services.inference.models import ModelSet
from services.inference.objects import Detection as ObjectDetection
from services.jobs.service import JobContext, JobType, StoreStep, ensure_queued_job, register_job_type
from services.photos.images import ANALYSIS_MAX_SIDE, load_oriented
from services.photos.service import get_photo, get_photos, owner_photo_ids
from services.quality.assess import QualityResult, assess_quality, jpeg_tables
from services.quality.rotation import (
    RotationSuggestion,
    head_is_sure,
    mosaic_evidence,
    needs_rotation_check,
    suggest_rotation,
)
from services.search.documents import embed_summaries
from services.search.places import set_photo_place
from services.tagging.rules import DerivedTag, derive_tags, load_rules, object_thresholds_for
from services.tagging.service import ModelTag, replace_model_tags
from services.tagging.thresholds import load_object_thresholds

log = logging.getLogger(__name__)


@dataclass
class PhotoFindings:
    """Everything the models said about one photo."""

    detections: list[ObjectDetection]
    labels: LabelResult
    faces: list[FaceResult]
    tags: list[DerivedTag]
    inference_ms: float
    rotation: RotationSuggestion | None = None
    quality: QualityResult | None = None
    # The photo in the sentence space (alignment head), None when that model is not installed.
    text_vector: np.ndarray | None = None


@dataclass(frozen=True)
class QualitySource:
    """What the quality metrics need to know about the original file beyond the decoded image."""

    jpeg_quant_tables: Mapping[int, Sequence[int]] | None
    original_size: tuple[int, int] | None


def analyze_images(
    images: list[Image.Image],
    models: ModelSet,
    check_rotation: list[bool] | None = None,
    quality_sources: Sequence[QualitySource] | None = None,
) -> list[PhotoFindings]:
    """Run every model over a batch of images (EXIF orientation applied).

    check_rotation: per image, whether to look for a sideways or upside-down photo (three more
    labeler passes and one detector pass over a mosaic, so only for files with no camera orientation).
    quality_sources: per image, the original file's facts for the quality metrics; None skips them.

    With `analysis_lanes` 2, two lanes run side by side: a second thread embeds the photos squashed
    to the image model's square (the sentence-space vectors and the rotation head's upright view both
    read them), then runs the detector and the labeler; this one runs faces, quality metrics and then
    the rotation check. ONNX Runtime and numpy release the GIL, and each session uses half the cores,
    so one job keeps every core busy (bench/reports/ingest.md). With 1 they run in turn.
    """
    if not images:
        return []
    rules = load_rules()
    # Tag thresholds are fitted per detector model; its floor is also the score boxes are kept at.
    thresholds = object_thresholds_for(rules, load_object_thresholds(models.objects.name))
    started = time.perf_counter()

    def detect_and_label() -> tuple[list[list[ObjectDetection]], list[LabelResult]]:
        detections = models.objects.detect(images, score_threshold=thresholds.evidence_floor)
        return detections, models.labels.predict(images, top_k=5)

    def faces_and_quality() -> tuple[list[list[FaceResult]], list[QualityResult | None]]:
        faces = models.faces.analyze(images)
        qualities: list[QualityResult | None] = [None] * len(images)
        for i, source in enumerate(quality_sources or []):
            qualities[i] = assess_quality(
                images[i],
                jpeg_quant_tables=source.jpeg_quant_tables,
                original_size=source.original_size,
                face_boxes=[face.detection.box for face in faces[i]],
            )
        return faces, qualities

    if models.settings.analysis_lanes > 1:
        # One worker runs its two tasks in order, so the squashed views are ready early.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis-detector") as lane:
            squashed_future = lane.submit(squashed_views, images, models)
            detector_future = lane.submit(detect_and_label)
            faces, qualities = faces_and_quality()
            squashed = squashed_future.result()
            rotations = check_rotations(images, models, squashed, check_rotation or [])
            detections, labels = detector_future.result()
    else:
        squashed = squashed_views(images, models)
        detections, labels = detect_and_label()
        faces, qualities = faces_and_quality()
        rotations = check_rotations(images, models, squashed, check_rotation or [])
    sentence_vectors: list[np.ndarray | None] = (
        [None] * len(images) if squashed is None else list(squashed.vectors)
    )
    per_photo_ms = (time.perf_counter() - started) * 1000 / len(images)
    return [
        PhotoFindings(
            detections=photo_detections,
            labels=photo_labels,
            faces=photo_faces,
            tags=derive_tags(
                photo_detections,
                photo_labels.labels,
                face_boxes=[(*face.detection.box, face.detection.score) for face in photo_faces],
                rules=rules,
                label_names=models.labels.class_names,
                object_thresholds=thresholds,
            ),
            inference_ms=per_photo_ms,
            rotation=rotation,
            quality=quality,
            text_vector=text_vector,
        )
        for photo_detections, photo_labels, photo_faces, rotation, quality, text_vector in zip(
            detections, labels, faces, rotations, qualities, sentence_vectors, strict=True
        )
    ]


def check_rotations(
    images: list[Image.Image],
    models: ModelSet,
    squashed: SquashedViews | None,
    check: list[bool],
) -> list[RotationSuggestion | None]:
    """Rotation suggestions for the photos flagged in `check`: the rotation head over the image model's
    embedding of each turn (one batched call; the upright view is taken from `squashed` where it is
    the head's), and where it hesitates the detectors' view of a mosaic of the turns."""
    suggestions: list[RotationSuggestion | None] = [None] * len(images)
    flagged = [i for i, flag in enumerate(check) if flag]
    if not flagged:
        return suggestions
    try:
        head = models.rotation
        upright = (
            squashed.embeddings[flagged]
            if squashed is not None and head.reads_upright_view_of(squashed.image_model)
            else None
        )
        probabilities = head.turn_probabilities([images[i] for i in flagged], upright)
    except ModelMissing as missing:
        log.warning("no rotation suggestions: %s", missing.detail)
        return suggestions
    for i, photo_probabilities in zip(flagged, probabilities, strict=True):
        evidence = (
            None
            if head_is_sure(photo_probabilities)
            else mosaic_evidence(images[i], models.objects, models.faces.detector)
        )
        suggestions[i] = suggest_rotation(photo_probabilities, evidence)
    return suggestions


def store_findings(db: Session, photo: Photo, findings: PhotoFindings, models: ModelSet) -> None:
    detector_name = models.objects.entry.name
    labeler_name = models.labels.model_name
    db.execute(delete(Detection).where(Detection.photo_id == photo.id))
    db.add_all(
        Detection(
            photo_id=photo.id,
            class_name=d.class_name,
            score=round(d.score, 4),
            box_x=d.box[0],
            box_y=d.box[1],
            box_w=d.box[2],
            box_h=d.box[3],
            model=detector_name,
        )
        for d in findings.detections
    )
    replace_model_tags(
        db,
        photo=photo,
        tags=[ModelTag(name=t.name, kind=t.kind, confidence=t.confidence) for t in findings.tags],
        model=f"{detector_name}+{labeler_name}",
    )
    embedding = np.asarray(findings.labels.embedding, dtype=np.float32)
    db.merge(
        PhotoEmbedding(
            photo_id=photo.id,
            model=labeler_name,
            owner_id=photo.owner_id,
            dim=embedding.shape[0],
            vector=embedding.tobytes(),
        )
    )
    if findings.text_vector is not None:
        store_text_vector(db, photo, findings.text_vector, models.alignment.model_name)
    db.merge(
        PhotoAnalysis(
            photo_id=photo.id,
            labels=[[name, round(score, 4)] for name, score in findings.labels.labels],
            models={"objects": detector_name, "labels": labeler_name},
            analysed_at=utcnow(),
            duration_ms=round(findings.inference_ms, 2),
        )
    )
    store_faces(db, photo, findings.faces, detector=models.faces.detector.name)
    if findings.quality is not None:
        photo.quality_score = findings.quality.score
        photo.quality_issues = findings.quality.issues
        photo.quality_metrics = findings.quality.metrics
    if findings.rotation is not None:
        photo.suggested_rotation = findings.rotation.rotation
        photo.suggested_rotation_confidence = round(findings.rotation.confidence, 3)
    set_photo_place(photo)
    photo.analysis_state = "done"
    photo.analysis_error = None
    photos_changed(db, photo.owner_id, [photo.id])


def prepare_analysis(
    context: JobContext, owner_id: str, photo_ids: list[str], params: dict[str, Any]
) -> StoreStep:
    """Decode the photos and run the models; returns the step that stores the findings (the job runner
    prepares the next batch while this one is stored)."""
    errors: dict[str, str] = {}
    # Read only: a write here would wait for the previous batch's store to commit (SQLite has one
    # writer) and undo the read-ahead; photos go from pending to done or failed in the store step.
    with context.sessions() as db:
        photos = get_photos(db, owner_id=owner_id, photo_ids=photo_ids)
        sources = {photo.id: photo.sha256 for photo in photos}
        original_sizes = {photo.id: (photo.width, photo.height) for photo in photos}
        check_rotation = {
            photo.id: context.settings.suggest_rotation
            and needs_rotation_check(photo.orientation, photo.camera_make)
            for photo in photos
        }
    for photo_id in photo_ids:
        if photo_id not in sources:
            errors[photo_id] = "photo no longer exists"
    images: dict[str, Image.Image] = {}
    quality_sources: dict[str, QualitySource] = {}
    for photo_id, sha256 in sources.items():
        try:
            original = context.store.read(sha256)
            images[photo_id] = load_oriented(original, max_side=ANALYSIS_MAX_SIDE)
            quality_sources[photo_id] = QualitySource(jpeg_tables(original), original_sizes[photo_id])
        except Exception as exc:  # one unreadable photo must not sink the batch
            errors[photo_id] = f"could not decode the original: {exc}"
    models = context.models
    ids = list(images)
    try:
        findings = analyze_images(
            [images[i] for i in ids],
            models,
            [check_rotation[i] for i in ids],
            [quality_sources[i] for i in ids],
        )
    except Exception as exc:  # e.g. a missing model file: the photos are failed, not left pending
        log.exception("analysis of %d photos failed", len(ids))
        errors.update({photo_id: f"analysis failed: {exc}" for photo_id in ids})
        findings = []

    def store() -> dict[str, str]:
        with context.sessions() as db:
            for photo in get_photos(db, owner_id=owner_id, photo_ids=list(sources)):
                if photo.id in errors:
                    photo.analysis_state = "failed"
                    photo.analysis_error = errors[photo.id]
                else:
                    store_findings(db, photo, findings[ids.index(photo.id)], models)
            analysed = [photo_id for photo_id in ids if photo_id not in errors]
            try:
                embed_summaries(db, owner_id, analysed, models.text)
            except ModelMissing as error:
                # Search still works on words; the index embeds the summaries once the model is there.
                log.warning("summaries of %d photos not embedded: %s", len(analysed), error.detail)
            db.commit()
        return errors

    return store


def recognise_after_analysis(context: JobContext, owner_id: str, params: dict[str, Any]) -> None:
    """New faces get names as soon as the owner has taught the classifier anyone."""
    with context.sessions() as db:
        if owner_has_labels(db, owner_id):
            ensure_queued_job(db, owner_id=owner_id, type="recognize")
            db.commit()


def register() -> None:
    register_job_type(
        JobType(
            name="analyze",
            handler=None,
            batch_size=lambda settings: settings.analysis_batch_size,
            default_items=owner_photo_ids,
            on_finished=recognise_after_analysis,
            queue="analysis",
            splittable=True,
            prepare=prepare_analysis,
        )
    )


def list_detections(db: Session, *, owner_id: str, photo_id: str) -> list[Detection]:
    photo = get_photo(db, owner_id=owner_id, photo_id=photo_id)
    return list(
        db.scalars(select(Detection).where(Detection.photo_id == photo.id).order_by(Detection.score.desc()))
    )
