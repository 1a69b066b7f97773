"""Faces: stored from analysis, named by users, recognised by a per-owner classifier, clustered.

A user's label always wins: analysis re-runs keep labelled faces, recognition only writes faces the
model named (person_source "model") or nobody named, and a face the user said is not a person is
never given that person again (face_rejections). Recognition's three answers: named (person_id,
person_source "model"), suggested (suggested_person_id: never counted as that person's face until a
user confirms it with a label) and unknown.
"""

import io
import logging
from collections import defaultdict
from datetime import datetime
from typing import Any, Literal

import numpy as np
from PIL import Image
from sqlalchemy import Select, and_, case, delete, func, literal, or_, select
from sqlalchemy.orm import Session

import services.faces.recognition as recognition
from core.errors import Conflict, Invalid, NotFound
from core.events import photos_changed
from core.pagination import decode_cursor, encode_cursor
from core.storage import BlobStore
from db.models import Face, FaceRejection, Person, Photo
from db.owned import get_owned
from services.faces.people import cover_faces, get_or_create_by_name, get_person
from services.inference.faces import FaceResult
from services.inference.tensors import box_iou
from services.jobs.service import JobContext, JobType, ensure_queued_job, register_job_type
from services.photos.images import load_oriented
from services.photos.service import get_photo

log = logging.getLogger(__name__)

# A re-detected face is "the same face" as a stored one when their boxes overlap this much.
SAME_FACE_IOU = 0.5
FaceOrder = Literal["created", "confidence"]


def _box(face: Face) -> tuple[float, float, float, float]:
    return (face.box_x, face.box_y, face.box_w, face.box_h)


def store_faces(db: Session, photo: Photo, results: list[FaceResult], detector: str) -> None:
    """Replace the photo's detected faces, carrying names over to the re-detected ones.

    A face the user labelled but the detector no longer finds is kept: the user's word stands.
    """
    existing = list(db.scalars(select(Face).where(Face.photo_id == photo.id)))
    unmatched = set(range(len(existing)))
    for result in results:
        box = tuple(float(v) for v in result.detection.box)
        best, best_iou = None, SAME_FACE_IOU
        for index in unmatched:
            overlap = box_iou(box, _box(existing[index]))
            if overlap >= best_iou:
                best, best_iou = index, overlap
        if best is not None:
            unmatched.discard(best)
            face = existing[best]
        else:
            face = Face(photo_id=photo.id, owner_id=photo.owner_id)
            db.add(face)
        face.box_x, face.box_y, face.box_w, face.box_h = box
        face.landmarks = [[round(float(x), 5), round(float(y), 5)] for x, y in result.detection.landmarks]
        face.detection_score = round(float(result.detection.score), 4)
        face.detector = detector
        face.embedding = np.asarray(result.embedding, dtype=np.float32).tobytes()
        face.embedding_model = result.model_name
        face.recognisable = bool(result.quality.recognisable)
        face.size_px = round(float(result.quality.size_px), 1)
        face.sharpness = round(float(result.quality.sharpness), 1)
    for index in unmatched:
        if existing[index].person_source != "user":
            db.delete(existing[index])


def faces_count_for_photos(db: Session, photo_ids: list[str]) -> dict[str, int]:
    counts = dict(
        db.execute(
            select(Face.photo_id, func.count(Face.id))
            .where(Face.photo_id.in_(photo_ids))
            .group_by(Face.photo_id)
        ).all()
    )
    return {photo_id: counts.get(photo_id, 0) for photo_id in photo_ids}


def get_face(db: Session, *, owner_id: str, face_id: str) -> Face:
    return get_owned(db, Face, owner_id=owner_id, row_id=face_id, what="face")


def faces_of_photo(db: Session, *, owner_id: str, photo_id: str) -> list[Face]:
    photo = get_photo(db, owner_id=owner_id, photo_id=photo_id)
    return list(db.scalars(select(Face).where(Face.photo_id == photo.id).order_by(Face.box_x, Face.id)))


def list_faces(
    db: Session,
    *,
    owner_id: str,
    person_id: str | None = None,
    unlabeled: bool | None = None,
    suggested: bool | None = None,
    order: FaceOrder = "created",
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Face], str | None]:
    """`order=confidence`: the model's names and suggestions, least sure first (faces with neither
    sort as 0, user labels as 1). `suggested=true`: faces that carry a suggestion (the review queue).
    Faces on photos in the trash are left out, as the photos are everywhere else."""
    query: Select[Any] = (
        select(Face)
        .join(Photo, Photo.id == Face.photo_id)
        .where(Face.owner_id == owner_id, Photo.trashed_at.is_(None))
    )
    if person_id is not None:
        get_person(db, owner_id=owner_id, person_id=person_id)
        query = query.where(Face.person_id == person_id)
    if unlabeled is True:
        query = query.where(or_(Face.person_source.is_(None), Face.person_source == "model"))
    elif unlabeled is False:
        query = query.where(Face.person_source == "user")
    if suggested is True:
        query = query.where(Face.suggested_person_id.is_not(None))
    elif suggested is False:
        query = query.where(Face.suggested_person_id.is_(None))
    if order == "confidence":
        key: Any = case(
            (Face.person_source == "user", 1.0),
            (Face.person_confidence.is_not(None), Face.person_confidence),
            (Face.suggestion_confidence.is_not(None), Face.suggestion_confidence),
            else_=0.0,
        )
    else:
        key = Face.created_at
    query = query.add_columns(key.label("sort_key"))
    if cursor:
        raw, last_id = decode_cursor(cursor, (datetime if order == "created" else float, str))
        bound: Any = literal(raw, type_=Face.created_at.type) if order == "created" else raw
        query = query.where(or_(key > bound, and_(key == bound, Face.id > last_id)))
    rows = db.execute(query.order_by(key.asc(), Face.id.asc()).limit(limit + 1)).all()
    faces = [row[0] for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last_key = rows[limit - 1][1]
        next_cursor = encode_cursor(
            [last_key.isoformat() if hasattr(last_key, "isoformat") else last_key, faces[-1].id]
        )
    return faces, next_cursor


def label_faces(
    db: Session, *, owner_id: str, face_ids: list[str], person_id: str | None, name: str | None
) -> Person:
    """Name faces as one person (by id, or by name: created when new). Moving a face is just this."""
    if (person_id is None) == (name is None):
        raise Invalid(
            "give exactly one of person_id or name", errors=[{"field": "person_id"}, {"field": "name"}]
        )
    face_ids = list(dict.fromkeys(face_ids))
    if not face_ids:
        raise Invalid("face_ids must not be empty", errors=[{"field": "face_ids"}])
    faces = [get_face(db, owner_id=owner_id, face_id=face_id) for face_id in face_ids]
    by_photo: dict[str, list[Face]] = defaultdict(list)
    for face in faces:
        by_photo[face.photo_id].append(face)
    if any(len(group) > 1 for group in by_photo.values()):
        raise Conflict(
            "two faces of one photo cannot be the same person",
            errors=[
                {"photo_id": photo_id, "face_ids": [f.id for f in group]}
                for photo_id, group in by_photo.items()
                if len(group) > 1
            ],
        )
    person = (
        get_person(db, owner_id=owner_id, person_id=person_id)
        if person_id is not None
        else get_or_create_by_name(db, owner_id=owner_id, name=name or "")
    )
    # Another face of the same photo already holding this person gives way, unless a user put it there.
    clashes = list(
        db.scalars(
            select(Face).where(
                Face.photo_id.in_(list(by_photo)), Face.person_id == person.id, Face.id.not_in(face_ids)
            )
        )
    )
    user_clashes = [face for face in clashes if face.person_source == "user"]
    if user_clashes:
        raise Conflict(
            f"{person.name} is already labelled on another face of the same photo",
            errors=[{"photo_id": f.photo_id, "face_id": f.id} for f in user_clashes],
        )
    for face in clashes:
        face.person_id, face.person_source, face.person_confidence = None, None, None
    for face in faces:
        face.person_id, face.person_source, face.person_confidence = person.id, "user", 1.0
        _clear_suggestion(face)
    # Labelling a face as a person takes back an earlier "not this person" for it.
    db.execute(
        delete(FaceRejection).where(FaceRejection.face_id.in_(face_ids), FaceRejection.person_id == person.id)
    )
    photos_changed(db, owner_id, by_photo)
    # The labels and the retraining they need commit together.
    ensure_queued_job(db, owner_id=owner_id, type="recognize")
    db.commit()
    return person


def _clear_suggestion(face: Face) -> None:
    face.suggested_person_id, face.suggestion_confidence = None, None


def unassign_face(db: Session, *, owner_id: str, face_id: str) -> Face:
    """The user says "not this person" (the face's person, else its suggested person): recognition
    never gives it that person again, but may still name it as somebody else. A face with neither
    stays unnamed and recognition leaves it alone."""
    face = get_face(db, owner_id=owner_id, face_id=face_id)
    rejected = face.person_id or face.suggested_person_id
    if rejected is not None:
        if db.get(FaceRejection, (face.id, rejected)) is None:
            db.add(FaceRejection(face_id=face.id, person_id=rejected, owner_id=owner_id))
        face.person_id, face.person_source, face.person_confidence = None, None, None
    else:
        face.person_id, face.person_source, face.person_confidence = None, "user", None
    _clear_suggestion(face)
    photos_changed(db, owner_id, [face.photo_id])
    ensure_queued_job(db, owner_id=owner_id, type="recognize")
    db.commit()
    return face


def _embeddings(faces: list[Face]) -> np.ndarray:
    return np.stack([np.frombuffer(face.embedding or b"", dtype=np.float32) for face in faces])


def _current_embedding_model(db: Session, owner_id: str) -> str | None:
    return db.scalar(
        select(Face.embedding_model)
        .where(Face.owner_id == owner_id, Face.embedding_model.is_not(None))
        .order_by(Face.created_at.desc())
        .limit(1)
    )


def suggest_clusters(db: Session, *, owner_id: str, min_size: int = 2) -> list[list[str]]:
    """Groups of faces nobody named (photos in the trash left out), so a whole group can be named
    with one label call."""
    model = _current_embedding_model(db, owner_id)
    faces = list(
        db.scalars(
            select(Face)
            .join(Photo, Photo.id == Face.photo_id)
            .where(
                Face.owner_id == owner_id,
                Face.person_id.is_(None),
                Face.recognisable.is_(True),
                Face.embedding_model == model,
                Photo.trashed_at.is_(None),
            )
            .order_by(Face.id)
        )
    )
    if len(faces) < min_size:
        return []
    groups = recognition.cluster(_embeddings(faces), min_size=min_size, photo_ids=[f.photo_id for f in faces])
    return [[faces[i].id for i in group] for group in groups]


def _teaching_faces(labelled: list[Face]) -> list[Face]:
    """The user-labelled faces the classifier learns from.

    Faces flagged not recognisable (too small or blurred) give noisy embeddings that can vouch for
    other poor faces, so they teach only a person the user labelled with no recognisable face:
    ignoring them there would silently leave a person the user taught untaught.
    """
    with_good_face = {face.person_id for face in labelled if face.recognisable}
    return [face for face in labelled if face.recognisable or face.person_id not in with_good_face]


def recognise(db: Session, *, owner_id: str, photo_ids: list[str] | None = None) -> int:
    """Judge the faces nobody labelled (named, suggested or unknown); returns how many got a name.

    The whole library's unlabelled faces are judged every time (they are the cohort that normalises
    the scores and the neighbours self-training looks at), so the answer for a face does not depend
    on which photos a job covers; only faces of `photo_ids` (all when None) are written. A small or
    blurred face is judged by the same bars as any other; it just never teaches (labels aside, see
    `_teaching_faces`) nor joins the cohort. Nothing is remembered between runs but the user's
    labels and rejections, so a library gives the same names as a fresh one with the same labels.
    """
    model = _current_embedding_model(db, owner_id)
    if model is None:
        return 0
    labelled = _teaching_faces(
        list(
            db.scalars(
                select(Face).where(
                    Face.owner_id == owner_id,
                    Face.person_source == "user",
                    Face.person_id.is_not(None),
                    Face.embedding_model == model,
                )
            )
        )
    )
    unnamed = or_(Face.person_source.is_(None), Face.person_source == "model")
    query = select(Face).where(Face.owner_id == owner_id, unnamed)
    if photo_ids is not None:
        query = query.where(Face.photo_id.in_(photo_ids))
    candidates = list(db.scalars(query))
    judged = (
        list(
            db.scalars(select(Face).where(Face.owner_id == owner_id, unnamed, Face.embedding_model == model))
        )
        if labelled
        else []
    )
    judgements = _judge(db, owner_id, labelled, judged)
    named = 0
    for face in candidates:
        judgement = judgements.get(face.id)
        face.person_id, face.person_source, face.person_confidence = None, None, None
        _clear_suggestion(face)
        if judgement is None or judgement.person_id is None:
            continue
        if judgement.state == recognition.FaceState.NAMED:
            face.person_id, face.person_source = judgement.person_id, "model"
            face.person_confidence = judgement.confidence
            named += 1
        else:
            face.suggested_person_id, face.suggestion_confidence = judgement.person_id, judgement.confidence
    photos_changed(db, owner_id, {face.photo_id for face in candidates})
    return named


def _judge(
    db: Session, owner_id: str, labelled: list[Face], judged: list[Face]
) -> dict[str, recognition.Judgement]:
    """Judgements of `judged` by face id, with no person twice in a photo."""
    if not labelled or not judged:
        return {}
    rejected: dict[str, set[str]] = defaultdict(set)
    for face_id, person_id in db.execute(
        select(FaceRejection.face_id, FaceRejection.person_id).where(FaceRejection.owner_id == owner_id)
    ):
        rejected[face_id].add(person_id)
    recognisable = [face for face in judged if face.recognisable]
    results = recognition.judge(
        _embeddings(labelled),
        [str(face.person_id) for face in labelled],
        _embeddings(judged),
        cohort=_embeddings(recognisable) if recognisable else None,
        query_photo=[face.photo_id for face in judged],
        rejected={row: rejected[face.id] for row, face in enumerate(judged) if face.id in rejected},
        labelled_photo=[face.photo_id for face in labelled],
        clusterable=np.array([bool(face.recognisable) for face in judged]),
    )
    by_photo: dict[str, list[tuple[str, recognition.Judgement]]] = defaultdict(list)
    for face, judgement in zip(judged, results, strict=True):
        by_photo[face.photo_id].append((face.id, judgement))
    # A person a user placed in a photo is not given to another face of that photo.
    for user_face in labelled_in_photos(db, owner_id, set(by_photo)):
        by_photo[user_face.photo_id].append(
            (user_face.id, recognition.Judgement.user_label(str(user_face.person_id)))
        )
    resolved: dict[str, recognition.Judgement] = {}
    for pairs in by_photo.values():
        resolved.update(recognition.assign_exclusive(pairs))
    return resolved


def labelled_in_photos(db: Session, owner_id: str, photo_ids: set[str]) -> list[Face]:
    """Faces a user named, in the given photos."""
    faces = db.scalars(
        select(Face).where(
            Face.owner_id == owner_id, Face.person_source == "user", Face.person_id.is_not(None)
        )
    )
    return [face for face in faces if face.photo_id in photo_ids]


def recognize_batch(
    context: JobContext, owner_id: str, photo_ids: list[str], params: dict[str, Any]
) -> dict[str, str]:
    with context.sessions() as db:
        recognise(db, owner_id=owner_id, photo_ids=photo_ids)
        db.commit()
    return {}


def photos_with_faces(db: Session, owner_id: str) -> list[str]:
    return list(
        db.scalars(select(Face.photo_id).where(Face.owner_id == owner_id).distinct().order_by(Face.photo_id))
    )


def owner_has_labels(db: Session, owner_id: str) -> bool:
    return (
        db.scalar(
            select(Face.id)
            .where(Face.owner_id == owner_id, Face.person_source == "user", Face.person_id.is_not(None))
            .limit(1)
        )
        is not None
    )


def face_crop_path(store: BlobStore, db: Session, *, owner_id: str, face_id: str, size: int = 160) -> Any:
    face = get_face(db, owner_id=owner_id, face_id=face_id)
    photo = get_photo(db, owner_id=owner_id, photo_id=face.photo_id)
    box = _box(face)

    def make(original: bytes) -> bytes:
        image = load_oriented(original)
        # A little context around the box, square, like every photo app's face chips.
        cx, cy = (box[0] + box[2] / 2) * image.width, (box[1] + box[3] / 2) * image.height
        side = max(box[2] * image.width, box[3] * image.height) * 1.4
        crop = image.crop((int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2)))
        crop = crop.resize((size, size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        crop.save(buffer, "JPEG", quality=88)
        return buffer.getvalue()

    variant = "face-{}-{}.jpg".format(size, "-".join(f"{v:.4f}" for v in box))
    return store.get_or_make_derived(photo.sha256, variant, make)


def person_thumbnail_path(store: BlobStore, db: Session, *, owner_id: str, person_id: str) -> Any:
    """The crop of the person's cover face; 404 while they have no face on a photo outside the trash."""
    person = get_person(db, owner_id=owner_id, person_id=person_id)
    face_id = cover_faces(db, [person])[person.id]
    if face_id is None:
        raise NotFound(f"{person.name} has no face to show yet")
    return face_crop_path(store, db, owner_id=owner_id, face_id=face_id)


def register() -> None:
    register_job_type(
        JobType(
            name="recognize",
            handler=recognize_batch,
            batch_size=lambda settings: 500,
            default_items=photos_with_faces,
        )
    )


def person_names(db: Session, person_ids: list[str]) -> dict[str, str]:
    if not person_ids:
        return {}
    return dict(db.execute(select(Person.id, Person.name).where(Person.id.in_(set(person_ids)))).all())
