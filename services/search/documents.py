"""The per-photo search document: every fact a photo says about itself, as weighted index terms.

Kept in step through the change hooks of core.events: any service that changes tags, faces,
people, captions or places calls `photos_changed` inside its transaction, and `on_photos_changed`
rewrites the affected documents in that same transaction and bumps the owner's version, so the
documents and the change feed commit (or roll back) with the change itself.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from db.models import Face, Person, Photo, PhotoAnalysis, PhotoTag
from db.search_models import PhotoSearchDoc, SearchOwnerState
from db.types import utcnow
from services.inference.text import TextEmbedder
from services.search.facet_counts import apply_delta, mark_facets_ready, photo_facet_keys, replace_keys
from services.search.text import METADATA_PREFIX, NAME_PREFIX, phrase_term, terms, words

log = logging.getLogger(__name__)

# How much a fact counts, by where it comes from: the user's own words and names beat model guesses.
FIELD_WEIGHTS: dict[str, float] = {
    "tag": 3.0,  # user tag
    "person": 3.0,
    "caption": 1.5,
    "object": 2.0,
    "label": 1.5,
    "category": 1.0,
    "place": 2.0,
    "date": 1.0,
    "camera": 1.0,
    "filename": 0.5,
}
# Fields whose values are whole vocabulary entries (query expansion points at these), and fields whose
# values are names matched as a whole only.
PHRASE_FIELDS = frozenset({"tag", "object", "label", "category"})
NAME_FIELDS = frozenset({"person", "place"})
# Words that say when, where, with what or who, not what is in the picture: a query made of them is
# answered by the words alone (the content summary cannot know them). Marked with a zero-weight term.
METADATA_FIELDS = frozenset({"person", "place", "date", "camera", "filename"})
# Raw classifier labels below this probability say more noise than signal.
MIN_RAW_LABEL = 0.05
# Words in camera makes that nobody searches for.
_CAMERA_NOISE = frozenset({"corporation", "corp", "company", "co", "ltd", "inc", "imaging", "digital"})
_MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
# Tombstones only need to live until every process has read them; a stale process is still safe,
# because every search result is re-checked against the photos table.
TOMBSTONE_DAYS = 7


@dataclass(frozen=True)
class Entry:
    field: str
    value: str
    weight: float


@dataclass
class PhotoFacts:
    """What a photo's rows say, gathered for one document."""

    photo: Photo
    tags: list[PhotoTag]
    raw_labels: list[tuple[str, float]]
    people: list[str]
    person_ids: list[str]


def season(month: int, southern: bool) -> str:
    northern = ("winter", "spring", "summer", "autumn")[(month % 12) // 3]
    if not southern:
        return northern
    return {"winter": "summer", "summer": "winter", "spring": "autumn", "autumn": "spring"}[northern]


def photo_entries(facts: PhotoFacts) -> list[Entry]:
    photo = facts.photo
    entries: list[Entry] = []
    rejected = {tag.name for tag in facts.tags if tag.state == "rejected"}
    tag_names: set[str] = set()
    for tag in facts.tags:
        if tag.state == "rejected":
            continue
        field = "tag" if tag.kind == "user" else tag.kind
        # A confirmed model tag is as good as the user's word; a suggestion counts by its confidence.
        confidence = 1.0 if tag.state == "confirmed" or tag.confidence is None else tag.confidence
        entries.append(Entry(field, tag.name, round(FIELD_WEIGHTS.get(field, 1.0) * confidence, 4)))
        tag_names.add(tag.name)
    for name, probability in facts.raw_labels:
        name = name.lower()
        if name in tag_names or name in rejected or probability < MIN_RAW_LABEL:
            continue
        entries.append(Entry("label", name, round(FIELD_WEIGHTS["label"] * probability, 4)))
        tag_names.add(name)
    entries.extend(Entry("person", name, FIELD_WEIGHTS["person"]) for name in sorted(set(facts.people)))
    if photo.caption:
        entries.append(Entry("caption", photo.caption, FIELD_WEIGHTS["caption"]))
    for value in (photo.place_city, photo.place_region, photo.place_country):
        if value:
            entries.append(Entry("place", value, FIELD_WEIGHTS["place"]))
    if photo.taken_at is not None:
        taken: datetime = photo.taken_at
        southern = photo.gps_lat is not None and photo.gps_lat < 0
        for value in (str(taken.year), _MONTHS[taken.month - 1], season(taken.month, southern)):
            entries.append(Entry("date", value, FIELD_WEIGHTS["date"]))
    camera = " ".join(
        word
        for word in words(f"{photo.camera_make or ''} {photo.camera_model or ''}")
        if word not in _CAMERA_NOISE
    )
    if camera:
        entries.append(Entry("camera", camera, FIELD_WEIGHTS["camera"]))
    stem = PurePath(photo.filename).stem
    if stem:
        entries.append(Entry("filename", stem, FIELD_WEIGHTS["filename"]))
    return entries


def entry_terms(entries: list[Entry]) -> tuple[dict[str, float], float]:
    """Index terms with summed weights, and the document length (word count) BM25 normalises by."""
    weights: dict[str, float] = defaultdict(float)
    length = 0.0
    for entry in entries:
        entry_words = set(terms(entry.value))
        length += len(entry_words)
        for term in entry_words:
            weights[term] += entry.weight
        if entry.field in METADATA_FIELDS:
            for term in entry_words:
                weights[METADATA_PREFIX + term] = 0.0
        if entry.field in PHRASE_FIELDS:
            weights[phrase_term(entry.value)] += entry.weight
        elif entry.field in NAME_FIELDS:
            weights[phrase_term(entry.value, NAME_PREFIX)] += entry.weight
    return {term: round(weight, 4) for term, weight in weights.items()}, length


def summary(entries: list[Entry], limit: int = 12) -> str:
    """A short sentence of the photo's content for the sentence-embedding comparison."""
    content = sorted(
        (e for e in entries if e.field in ("tag", "object", "label", "category", "person")),
        key=lambda e: -e.weight,
    )
    names = list(dict.fromkeys(e.value for e in content))[:limit]
    captions = [e.value for e in entries if e.field == "caption"]
    return "; ".join([*captions, ", ".join(names)]).strip("; ")


def gather_facts(db: Session, owner_id: str, photo_ids: list[str]) -> list[PhotoFacts]:
    photos = list(
        db.scalars(select(Photo).where(Photo.id.in_(photo_ids), owned_by(Photo.owner_id, owner_id)))
    )
    ids = [photo.id for photo in photos]
    tags: dict[str, list[PhotoTag]] = defaultdict(list)
    for tag in db.scalars(select(PhotoTag).where(PhotoTag.photo_id.in_(ids))):
        tags[tag.photo_id].append(tag)
    raw: dict[str, list[tuple[str, float]]] = {
        photo_id: [(str(name), float(score)) for name, score in labels or []]
        for photo_id, labels in db.execute(
            select(PhotoAnalysis.photo_id, PhotoAnalysis.labels).where(PhotoAnalysis.photo_id.in_(ids))
        )
    }
    people: dict[str, list[str]] = defaultdict(list)
    person_ids: dict[str, set[str]] = defaultdict(set)
    for photo_id, person_id, name in db.execute(
        select(Face.photo_id, Person.id, Person.name)
        .join(Person, Person.id == Face.person_id)
        .where(Face.photo_id.in_(ids))
    ):
        people[photo_id].append(name)
        person_ids[photo_id].add(person_id)
    return [
        PhotoFacts(
            photo=p,
            tags=tags[p.id],
            raw_labels=raw.get(p.id, []),
            people=people[p.id],
            person_ids=sorted(person_ids[p.id]),
        )
        for p in photos
    ]


def bump_version(db: Session, owner_id: str) -> int:
    """The owner's next change number; the row lock it takes orders concurrent writers."""
    insert = sqlite_insert if db.get_bind().dialect.name == "sqlite" else postgresql_insert
    db.execute(
        insert(SearchOwnerState)
        .values(owner_id=owner_id, version=0)
        .on_conflict_do_nothing(index_elements=["owner_id"])
    )
    return int(
        db.execute(
            update(SearchOwnerState)
            .where(SearchOwnerState.owner_id == owner_id)
            .values(version=SearchOwnerState.version + 1)
            .returning(SearchOwnerState.version)
            .execution_options(synchronize_session=False)
        ).scalar_one()
    )


def current_version(db: Session, owner_id: str) -> int:
    version = db.scalar(select(SearchOwnerState.version).where(SearchOwnerState.owner_id == owner_id))
    return int(version or 0)


def _existing_docs(db: Session, photo_ids: list[str]) -> dict[str, PhotoSearchDoc]:
    return {
        doc.photo_id: doc
        for doc in db.scalars(select(PhotoSearchDoc).where(PhotoSearchDoc.photo_id.in_(photo_ids)))
    }


def write_documents(db: Session, owner_id: str, photo_ids: list[str]) -> None:
    """(Re)build the documents of these photos, in the caller's transaction."""
    if not photo_ids:
        return
    facts = gather_facts(db, owner_id, photo_ids)
    if not facts:
        return
    version = bump_version(db, owner_id)
    existing = _existing_docs(db, [f.photo.id for f in facts])
    delta: Counter[str] = Counter()
    for fact in facts:
        entries = photo_entries(fact)
        index_terms, length = entry_terms(entries)
        doc = existing.get(fact.photo.id)
        if doc is None:
            doc = PhotoSearchDoc(photo_id=fact.photo.id, owner_id=owner_id)
            db.add(doc)
        new_summary = summary(entries)
        if new_summary != doc.summary:
            doc.summary_vector = None
            doc.summary_model = None
        doc.version = version
        doc.deleted = False
        doc.entries = [[e.field, e.value, e.weight] for e in entries]
        doc.terms = index_terms
        doc.length = length
        doc.summary = new_summary
        replace_keys(doc, photo_facet_keys(fact.photo, fact.tags, fact.person_ids), delta)
    apply_delta(db, owner_id, delta)


def embed_summaries(db: Session, owner_id: str, photo_ids: list[str], text_model: TextEmbedder) -> None:
    """Sentence embeddings for these photos' summaries that have none yet (analysis calls this).

    Documents are rewritten inside every transaction that changes a photo, where no model is at
    hand; a summary left without a vector is embedded here, or by the index when it loads it.
    """
    docs = [
        doc
        for doc in _existing_docs(db, photo_ids).values()
        if doc.owner_id == owner_id and doc.summary and doc.summary_vector is None
    ]
    if not docs:
        return
    vectors = text_model.embed([doc.summary for doc in docs])
    for doc, vector in zip(docs, vectors, strict=True):
        doc.summary_vector = np.asarray(vector, dtype=np.float32).tobytes()
        doc.summary_model = text_model.model_name


def mark_deleted(db: Session, owner_id: str, photo_ids: list[str]) -> None:
    if not photo_ids:
        return
    version = bump_version(db, owner_id)
    existing = _existing_docs(db, photo_ids)
    delta: Counter[str] = Counter()
    for photo_id in photo_ids:
        doc = existing.get(photo_id)
        if doc is None:
            doc = PhotoSearchDoc(photo_id=photo_id, owner_id=owner_id)
            db.add(doc)
        elif doc.owner_id != owner_id:
            continue
        doc.version = version
        doc.deleted = True
        doc.entries = []
        doc.terms = {}
        doc.length = 0.0
        doc.summary = ""
        doc.summary_vector = None
        doc.summary_model = None
        replace_keys(doc, [], delta)
    apply_delta(db, owner_id, delta)
    db.execute(
        delete(PhotoSearchDoc).where(
            PhotoSearchDoc.owner_id == owner_id,
            PhotoSearchDoc.deleted.is_(True),
            PhotoSearchDoc.updated_at < utcnow() - timedelta(days=TOMBSTONE_DAYS),
        )
    )


def backfill_documents(db: Session, owner_id: str, batch: int = 500) -> int:
    """Documents for photos that have none (a library that predates search); committed in batches."""
    missing = list(
        db.scalars(
            select(Photo.id).where(
                Photo.owner_id == owner_id,
                ~select(PhotoSearchDoc.photo_id).where(PhotoSearchDoc.photo_id == Photo.id).exists(),
            )
        )
    )
    for start in range(0, len(missing), batch):
        write_documents(db, owner_id, missing[start : start + batch])
        db.commit()
    if missing:
        log.info("search documents backfilled for %d photos of owner %s", len(missing), owner_id)
    return len(missing)


def build_facet_counts(db: Session, owner_id: str, batch: int = 500) -> int:
    """Count the documents written before facet counts existed (migration 0010), a batch per
    transaction; the last one marks the owner ready. Returns how many documents it counted."""
    counted = 0
    while True:
        # The owner's row lock (taken by bump_version) orders this against concurrent rewrites.
        bump_version(db, owner_id)
        pending = list(
            db.scalars(
                select(PhotoSearchDoc)
                .where(PhotoSearchDoc.owner_id == owner_id, PhotoSearchDoc.facet_keys.is_(None))
                .limit(batch)
            )
        )
        if not pending:
            mark_facets_ready(db, owner_id)
            db.commit()
            if counted:
                log.info("facet counts built for %d photos of owner %s", counted, owner_id)
            return counted
        facts = {
            fact.photo.id: fact for fact in gather_facts(db, owner_id, [doc.photo_id for doc in pending])
        }
        delta: Counter[str] = Counter()
        for doc in pending:
            fact = facts.get(doc.photo_id)
            keys = (
                photo_facet_keys(fact.photo, fact.tags, fact.person_ids) if fact and not doc.deleted else []
            )
            replace_keys(doc, keys, delta)
        apply_delta(db, owner_id, delta)
        db.commit()
        counted += len(pending)


def owned_by(column: Any, owner_id: str) -> ColumnElement[bool]:
    """`column == owner_id`, wrapped so that no index can serve it. Given a handful of ids, the primary
    key is the way in, but SQLite without statistics picks the (owner_id, ...) index and walks every row
    of the owner instead (100 ms at 100 000 photos). Use it only beside an `id IN (...)` condition."""
    return func.coalesce(column, "") == owner_id


def documents_for(db: Session, owner_id: str, photo_ids: list[str]) -> dict[str, tuple[list[Any], str]]:
    """The readable entries and summary of these photos' documents (for `matched`)."""
    if not photo_ids:
        return {}
    rows = db.execute(
        select(PhotoSearchDoc.photo_id, PhotoSearchDoc.entries, PhotoSearchDoc.summary).where(
            PhotoSearchDoc.photo_id.in_(photo_ids), owned_by(PhotoSearchDoc.owner_id, owner_id)
        )
    )
    return {photo_id: (entries or [], summary or "") for photo_id, entries, summary in rows}
