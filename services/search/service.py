"""Search the owner's photos by text, by example image, or by a stored photo; with the library filters.

Ranking happens in memory (services/search/index.py); the database then has the last word on
every candidate: it checks in chunks, best first, that the photo still exists for this owner and
passes the filters (services.photos.service.apply_filters, the same filters as GET /v1/photos). When a filter
turns out selective, the database hands over the whole (small) set of photos that pass instead.
Text pages are keyset cursors on (score, photo id); image pages are positions in the ranking.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import Conflict, Invalid, ModelMissing
from core.pagination import decode_cursor, encode_cursor
from db.models import Photo
from onnx_models.manifest import load_manifest
from services.inference.models import ModelSet
from services.inference.text import TextEmbedder
from services.photos.filters import PhotoFilters
from services.photos.images import ANALYSIS_MAX_SIDE, inspect_image, load_oriented
from services.photos.service import apply_filters, get_photo
from services.search.blas import one_blas_thread
from services.search.documents import documents_for, owned_by
from services.search.index import OwnerIndex, owner_index
from services.search.query import QueryPlan, plan_query
from services.search.text import NAME_PREFIX, phrase_term, terms
from services.search.vectors import VectorIndex, sorted_stream

log = logging.getLogger(__name__)

MAX_QUERY_LENGTH = 500
# Candidates checked against the database per round trip (primary-key lookups); a round trip is
# sized by the share of candidates that passed so far, up to this many.
MAX_CHECK_CHUNK = 4000
# After this many checked candidates with less than this share passing, the filter is selective and
# the database lists every photo that passes instead (measured: checking chunks is faster for anything
# broader, because a full filter scan of 100 000 photos costs 50-500 ms on SQLite).
SELECTIVE_AFTER = 10_000
SELECTIVE_PASS_RATE = 0.02
# Up to this radius a GPS filter is answered from its index at once; wider latitude bands cost more to
# list than checking candidates (measured at 100 000 photos: 25 km 10 ms, 200 km 22 ms listed vs 45 ms
# checked, 1000 km 15 ms checked).
SMALL_RADIUS_KM = 300.0
# Text ranking (see _score_text); chosen on the captions set with bench/eval_text_search.py.
LEXICAL_SHARE = 0.25
SEMANTIC_FLOOR = 0.3
SEMANTIC_MIN = 0.01
# Cosine at or above which two photos are near-duplicates: measured on the testdata photos and edited
# copies of them (bench/duplicate_thresholds.py, bench/reports/search.md).
DUPLICATE_COSINE = 0.85


@dataclass
class SearchHit:
    photo: Photo
    score: float
    matched: list[dict[str, Any]] = field(default_factory=list)


@lru_cache(maxsize=1)
def image_model_name() -> str:
    """The model whose embeddings image search compares (the labeler's pooled features)."""
    return load_manifest().default_for("labels").name


def filters_active(filters: PhotoFilters) -> bool:
    return any(
        value not in (None, [], "")
        for value in (
            filters.taken_after,
            filters.taken_before,
            filters.camera,
            filters.lat,
            filters.tags,
            filters.any_tags,
            filters.people,
            filters.has_faces,
            filters.min_quality,
        )
    )


class _FilterCheck:
    """Which candidates exist for the owner and pass the filters, asked of the database."""

    def __init__(self, db: Session, owner_id: str, filters: PhotoFilters) -> None:
        self.db = db
        self.owner_id = owner_id
        self.filters = filters
        self.active = filters_active(filters)
        self.allowed: set[str] | None = None
        self.checked = 0
        self.passed = 0

    def upfront(self) -> set[str] | None:
        """Every passing photo, when that is cheap to list and small: then searching only those beats
        checking candidates. A small circle is a small share of a library and its bounding box has an
        index, while checking candidates one by one runs the great-circle formula per row."""
        radius = self.filters.radius_km
        if self.allowed is None and radius is not None and radius <= SMALL_RADIUS_KM:
            self.allowed = self._everyone_passing()
        return self.allowed

    def __call__(self, photo_ids: list[str]) -> set[str]:
        if self.allowed is not None:
            return {photo_id for photo_id in photo_ids if photo_id in self.allowed}
        query = select(Photo.id).where(Photo.id.in_(photo_ids), owned_by(Photo.owner_id, self.owner_id))
        passing = set(self.db.scalars(apply_filters(query, self.filters)))
        self.checked += len(photo_ids)
        self.passed += len(passing)
        selective = self.passed < SELECTIVE_PASS_RATE * self.checked
        if self.active and self.checked >= SELECTIVE_AFTER and selective:
            self.allowed = self._everyone_passing()
        return passing

    def _everyone_passing(self) -> set[str]:
        everyone = select(Photo.id).where(Photo.owner_id == self.owner_id)
        return set(self.db.scalars(apply_filters(everyone, self.filters)))


def _keyset_after(cursor: str | None) -> tuple[float, str] | None:
    """Text pages continue after (score, photo id) of the last item."""
    if not cursor:
        return None
    score, photo_id = decode_cursor(cursor, 2)
    if not isinstance(score, int | float) or not isinstance(photo_id, str):
        raise Invalid("cursor is malformed or belongs to another search", errors=[{"field": "cursor"}])
    return float(score), photo_id


def _offset_after(cursor: str | None) -> int | None:
    """Image pages continue at a position of the ranking (its windows are exact only within)."""
    if not cursor:
        return None
    marker, position = decode_cursor(cursor, 2)
    if marker != "o" or not isinstance(position, int) or position < 0:
        raise Invalid("cursor is malformed or belongs to another search", errors=[{"field": "cursor"}])
    return position


def _page(
    stream: Iterator[tuple[str, float]],
    check: _FilterCheck,
    limit: int,
    after: tuple[float, str] | int | None,
    by_position: bool = False,
) -> tuple[list[tuple[str, float]], str | None]:
    """The first `limit` candidates of a best-first stream that come after the cursor and pass.

    The next cursor is (score, photo id) of the last item, or with `by_position` its place in the stream.
    """
    results: list[tuple[int, str, float]] = []
    buffer: list[tuple[int, str, float]] = []
    chunk = (limit + 1) * (4 if check.active else 1)
    skip = after if isinstance(after, int) else 0

    def flush() -> None:
        passing = check([photo_id for _, photo_id, _ in buffer])
        results.extend(item for item in buffer if item[1] in passing)
        buffer.clear()

    for position, (photo_id, score) in enumerate(stream):
        if position < skip:
            continue
        if isinstance(after, tuple) and (score > after[0] or (score == after[0] and photo_id <= after[1])):
            continue
        buffer.append((position, photo_id, score))
        if len(buffer) >= chunk:
            flush()
            if len(results) > limit:
                break
            # Size the next round trip by the pass rate so far, but grow at most 4x: the best
            # candidates of a query often pass a filter less than the rest (a checked row costs ~0.03 ms).
            pass_rate = (check.passed + 1) / (check.checked + 2)
            wanted = (limit + 1 - len(results)) / pass_rate * 1.25
            chunk = int(min(MAX_CHECK_CHUNK, 4 * chunk, max(2 * chunk, wanted)))
    if buffer and len(results) <= limit:
        flush()
    page = results[:limit]
    next_cursor = None
    if len(results) > limit:
        position, photo_id, score = page[-1]
        next_cursor = encode_cursor(["o", position + 1] if by_position else [score, photo_id])
    return [(photo_id, score) for _, photo_id, score in page], next_cursor


def _hits(db: Session, owner_id: str, page: list[tuple[str, float]]) -> list[SearchHit]:
    ids = [photo_id for photo_id, _ in page]
    query = select(Photo).where(Photo.id.in_(ids), owned_by(Photo.owner_id, owner_id))
    photos = {photo.id: photo for photo in db.scalars(query)}
    return [SearchHit(photo=photos[i], score=round(s, 6)) for i, s in page if i in photos]


# ---- text ----------------------------------------------------------------------------------------


def _text_stream(
    ids: list[str], scores: np.ndarray, after: tuple[float, str] | None
) -> Iterator[tuple[str, float]]:
    """Rows with a positive score, best first, ties by photo id (so keyset cursors are stable)."""
    candidate = scores > 0
    if after is not None:
        candidate &= scores <= np.float32(after[0])
    rows = np.flatnonzero(candidate)
    return sorted_stream(ids, rows, scores[rows])


def search_text(
    db: Session,
    models: ModelSet,
    *,
    owner_id: str,
    query: str,
    filters: PhotoFilters,
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[SearchHit], str | None]:
    """Photos whose tags, labels, people, caption, file name, camera, date or place match the words."""
    text = " ".join(query.split())
    if not text:
        raise Invalid("the query is empty", errors=[{"field": "q", "message": "give some words"}])
    if len(text) > MAX_QUERY_LENGTH:
        raise Invalid(f"the query is longer than {MAX_QUERY_LENGTH} characters", errors=[{"field": "q"}])
    after = _keyset_after(cursor)
    index = owner_index(db, owner_id)
    check = _FilterCheck(db, owner_id, filters)
    only = check.upfront()
    with one_blas_thread():
        scored = _score_text(index, text, _text_model(models))
        scores = scored.scores
        if only is not None:
            rows = [scored.rows[p] for p in only if p in scored.rows]
            scores = np.zeros_like(scored.scores)
            scores[rows] = scored.scores[rows]
        stream = _text_stream(scored.ids, scores, after)
        page, next_cursor = _page(stream, check, limit, after)
    plan = scored.plan
    hits = _hits(db, owner_id, page)
    documents = documents_for(db, owner_id, [hit.photo.id for hit in hits])
    for hit in hits:
        entries, summary = documents.get(hit.photo.id, ([], ""))
        hit.matched = matched_entries(plan, entries)
        # The index may have moved on since scoring (another request refreshed it): rows only grow.
        row = scored.rows.get(hit.photo.id)
        similarity = float(scored.semantic[row]) if row is not None and row < scored.semantic.size else 0.0
        if summary and (similarity >= SEMANTIC_FLOOR or not hit.matched):
            hit.matched.append(
                {
                    "field": "content",
                    "value": summary,
                    "query": text,
                    "similarity": round(similarity, 3),
                    "weight": round(similarity, 4),
                }
            )
    log.info(
        "search %r owner %s: %d terms (%d by meaning), %d results on this page",
        text,
        owner_id,
        len(plan.terms),
        len(plan.expansions),
        len(hits),
    )
    return hits, next_cursor


@dataclass
class _TextScores:
    plan: QueryPlan
    ids: list[str]
    rows: dict[str, int]
    scores: np.ndarray
    semantic: np.ndarray


def _text_model(models: ModelSet) -> TextEmbedder | None:
    try:
        return models.text
    except ModelMissing as error:
        # Search still works on words; the semantic part waits for the model.
        log.warning("text search without the semantic part: %s", error.detail)
        return None


def _score_text(index: OwnerIndex, text: str, text_model: TextEmbedder | None) -> _TextScores:
    """Final score = content share x summary cosine + LEXICAL_SHARE x BM25 / ceiling.

    BM25 over the ceiling is roughly the share of the query a photo matches, the cosine lies in 0..1:
    a photo that matches the words (a place, a name, a tag) beats one that is only about the same kind
    of thing, and among word matches the sentence similarity decides. The cosine counts only for the
    share of query words that are about content (not dates, places, cameras, names). A photo with no
    matching word must be at least SEMANTIC_FLOOR similar to come back at all.
    """
    with index.lock:
        vocabulary = index.vocabulary(text_model) if text_model is not None else None
        plan = plan_query(text, index.lexical.has, vocabulary, text_model)
        lexical = index.lexical.score(plan.terms)
        ceiling = max(index.lexical.ceiling(plan.terms), 1e-6)
        if plan.sentence_vector is not None and text_model is not None:
            semantic = index.summary_scores(plan.sentence_vector, text_model)
        else:
            semantic = np.zeros_like(lexical)
        share = np.float32(plan.content_share)
        scores = share * np.maximum(semantic, SEMANTIC_MIN) + np.float32(LEXICAL_SHARE / ceiling) * lexical
        scores[(lexical <= 0) & (semantic < SEMANTIC_FLOOR)] = 0.0
        return _TextScores(plan, index.lexical.ids, index.lexical.rows, scores, semantic)


@lru_cache(maxsize=65536)
def _value_terms(value: str) -> frozenset[str]:
    return frozenset([*terms(value), phrase_term(value), phrase_term(value, NAME_PREFIX)])


def matched_entries(plan: QueryPlan, entries: list[Any]) -> list[dict[str, Any]]:
    """Which facts of the photo matched which query words (best evidence first)."""
    matched: dict[tuple[str, str], dict[str, Any]] = {}
    for field_name, value, weight in entries:
        hits = _value_terms(value) & plan.terms.keys()
        if not hits:
            continue
        # The literal words first, then what matched by meaning; one entry per fact of the photo.
        best = max(hits, key=lambda term: plan.terms[term])
        expansion = plan.expansions.get(best)
        literal = sorted(
            (plan.origins[t] for t in hits if t not in plan.expansions), key=plan.text.lower().find
        )
        words = list(dict.fromkeys(literal or [plan.origins[best]]))
        item = {
            "field": field_name,
            "value": value,
            "query": " ".join(words),
            "similarity": None if literal or expansion is None else round(expansion.similarity, 3),
            "weight": round(float(weight) * plan.terms[best], 4),
        }
        key = (field_name, value)
        if key not in matched or item["weight"] > matched[key]["weight"]:
            matched[key] = item
    return sorted(matched.values(), key=lambda m: -m["weight"])


def search_photo_ids(
    db: Session,
    models: ModelSet,
    *,
    owner_id: str,
    query: str,
    filters: PhotoFilters,
    max_results: int = 100_000,
) -> list[str]:
    """Every photo id a text search finds (best first), for callers that select by search (exports)."""
    hits_ids: list[str] = []
    cursor: str | None = None
    while len(hits_ids) < max_results:
        hits, cursor = search_text(
            db, models, owner_id=owner_id, query=query, filters=filters, limit=500, cursor=cursor
        )
        hits_ids.extend(hit.photo.id for hit in hits)
        if not cursor:
            break
    return hits_ids[:max_results]


# ---- images --------------------------------------------------------------------------------------


def _vector_page(
    db: Session,
    owner_id: str,
    vectors: VectorIndex | None,
    query: np.ndarray,
    filters: PhotoFilters,
    limit: int,
    cursor: str | None,
    exclude: str | None = None,
) -> tuple[list[SearchHit], str | None]:
    after = _offset_after(cursor)
    if vectors is None:
        return [], None
    check = _FilterCheck(db, owner_id, filters)
    only = check.upfront()
    with one_blas_thread():
        stream = vectors.ranked(query, exclude=exclude, only=only)
        page, next_cursor = _page(stream, check, limit, after, by_position=True)
    hits = _hits(db, owner_id, page)
    for hit in hits:
        hit.matched = [
            {
                "field": "image",
                "value": "near-duplicate" if hit.score >= DUPLICATE_COSINE else "similar",
                "query": None,
                "similarity": round(hit.score, 4),
                "weight": round(hit.score, 4),
            }
        ]
    return hits, next_cursor


def search_by_image(
    db: Session,
    settings: Settings,
    models: ModelSet,
    *,
    owner_id: str,
    data: bytes,
    filters: PhotoFilters,
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[SearchHit], str | None]:
    """Photos most like an uploaded image (analysed, never stored), by image-embedding cosine."""
    inspect_image(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
    image = load_oriented(data, max_side=ANALYSIS_MAX_SIDE)
    labeler = models.labels
    (result,) = labeler.predict([image], top_k=1)
    vectors = owner_index(db, owner_id).vector_index(db, labeler.model_name)
    return _vector_page(db, owner_id, vectors, result.embedding, filters, limit, cursor)


def similar_photos(
    db: Session,
    *,
    owner_id: str,
    photo_id: str,
    filters: PhotoFilters,
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[SearchHit], str | None]:
    """The owner's photos most like one of theirs (itself left out)."""
    photo = get_photo(db, owner_id=owner_id, photo_id=photo_id)
    vectors = owner_index(db, owner_id).vector_index(db, image_model_name())
    vector = vectors.vector(photo.id) if vectors is not None else None
    if vector is None:
        raise Conflict(
            f"photo {photo_id} has no image embedding yet (analysis state: {photo.analysis_state})",
            errors=[{"field": "photo_id", "message": "not analysed"}],
        )
    return _vector_page(db, owner_id, vectors, vector, filters, limit, cursor, exclude=photo.id)
