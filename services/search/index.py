"""The one interface to the in-memory search indexes: `owner_index(db, owner_id)`.

Per owner, a process keeps a BM25 index of the search documents, one vector index per embedding
model and the embedded vocabulary, all loaded lazily on the owner's first search. They are caches:
the database stays the truth. Each request compares the owner's change counter (one primary-key
read) with the version the cache has applied and reads only the documents changed since, so a
write through any process of the service is visible to the next search in every process.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import PhotoEmbedding
from db.search_models import PhotoSearchDoc
from services.inference.text import TextEmbedder
from services.search.documents import backfill_documents, current_version, owned_by
from services.search.lexical import DocRow, LexicalIndex
from services.search.per_owner import PerOwner
from services.search.semantic import Vocabulary
from services.search.vectors import VectorIndex

log = logging.getLogger(__name__)

# Past this many changed documents (or this share of the library) a reload beats patching.
RELOAD_CHANGES = 2000
RELOAD_SHARE = 0.1
MAX_OWNERS = 64
SUMMARY_INDEX = "summary"


class OwnerIndex:
    def __init__(self, owner_id: str) -> None:
        self.owner_id = owner_id
        # Held while refreshing and while a query reads the structures; queries take milliseconds.
        self.lock = threading.RLock()
        self.version = -1
        self.lexical = LexicalIndex([])
        self.vectors: dict[str, VectorIndex] = {}
        # Sentence embeddings of the documents' summaries, and which of its rows each lexical row is.
        self.summaries = VectorIndex(SUMMARY_INDEX, 0)
        # Per vector index (summaries, learned vectors): which of its rows each lexical row is.
        self._row_maps: dict[str, tuple[tuple[int, ...], np.ndarray]] = {}
        # Summaries written without a vector (a user's edit), embedded on the next text search.
        self._pending_summaries: dict[str, str] = {}
        self._vocabulary: Vocabulary | None = None
        self._vocabulary_key: tuple[int, int] | None = None

    def refresh(self, db: Session) -> None:
        with self.lock:
            current = current_version(db, self.owner_id)
            if self.version < 0:
                self._load_documents(db)
                return
            if current == self.version:
                return
            changed = db.execute(
                select(
                    PhotoSearchDoc.photo_id,
                    PhotoSearchDoc.deleted,
                    PhotoSearchDoc.terms,
                    PhotoSearchDoc.length,
                    PhotoSearchDoc.version,
                    PhotoSearchDoc.summary_vector,
                    PhotoSearchDoc.summary,
                ).where(PhotoSearchDoc.owner_id == self.owner_id, PhotoSearchDoc.version > self.version)
            ).all()
            too_many = len(changed) + self.lexical.delta_rows > max(
                RELOAD_CHANGES, RELOAD_SHARE * self.lexical.live_count
            )
            if too_many:
                # Rebuilding the postings beats carrying a large delta; vectors are patched in place.
                self._load_documents(db)
            else:
                for photo_id, deleted, terms, length, _, summary_vector, summary in changed:
                    if deleted:
                        self.lexical.remove(photo_id)
                    else:
                        self.lexical.upsert(DocRow(photo_id, terms or {}, float(length or 0.0)))
                    self._pending_summaries.pop(photo_id, None)
                    if deleted or summary_vector is None:
                        self.summaries.remove(photo_id)
                        if not deleted and summary:
                            self._pending_summaries[photo_id] = summary
                    else:
                        self._upsert_summary(photo_id, summary_vector)
            ids = [row[0] for row in changed]
            for vectors in self.vectors.values():
                fresh = dict(_embeddings(db, self.owner_id, vectors.model, ids))
                for photo_id in ids:
                    if photo_id in fresh:
                        vectors.upsert(photo_id, fresh[photo_id])
                    else:
                        vectors.remove(photo_id)
            self.version = max([current, *(row[4] for row in changed)])

    def _load_documents(self, db: Session) -> None:
        """(Re)build the BM25 index and the summary vectors from the documents table."""
        started = time.perf_counter()
        backfill_documents(db, self.owner_id)
        # Read the version first: anything committed after it is re-applied by the next refresh.
        version = current_version(db, self.owner_id)
        rows = db.execute(
            select(
                PhotoSearchDoc.photo_id,
                PhotoSearchDoc.terms,
                PhotoSearchDoc.length,
                PhotoSearchDoc.summary_vector,
                PhotoSearchDoc.summary,
            ).where(PhotoSearchDoc.owner_id == self.owner_id, PhotoSearchDoc.deleted.is_(False))
        ).all()
        self.lexical = LexicalIndex(DocRow(p, t or {}, float(n or 0.0)) for p, t, n, _, _ in rows)
        self.summaries = VectorIndex(SUMMARY_INDEX, 0)
        summaries = [(p, np.frombuffer(v, dtype=np.float32)) for p, _, _, v, _ in rows if v is not None]
        self._pending_summaries = {p: s for p, _, _, v, s in rows if v is None and s}
        if summaries:
            self.summaries = VectorIndex(SUMMARY_INDEX, summaries[0][1].shape[0])
            self.summaries.load(summaries)
        self.version = max(self.version, version)
        log.info(
            "search index of owner %s loaded: %d documents, version %d, %.0f ms",
            self.owner_id,
            self.lexical.live_count,
            self.version,
            (time.perf_counter() - started) * 1000,
        )

    def _upsert_summary(self, photo_id: str, raw: bytes) -> None:
        vector = np.frombuffer(raw, dtype=np.float32)
        if not self.summaries.dim:
            self.summaries = VectorIndex(SUMMARY_INDEX, vector.shape[0])
        self.summaries.upsert(photo_id, vector)

    def _embed_pending_summaries(self, text_model: TextEmbedder) -> None:
        if not self._pending_summaries:
            return
        ids = list(self._pending_summaries)
        vectors = text_model.embed([self._pending_summaries[i] for i in ids])
        for photo_id, vector in zip(ids, vectors, strict=True):
            self._upsert_summary(photo_id, np.asarray(vector, dtype=np.float32).tobytes())
        self._pending_summaries.clear()

    def summary_scores(self, query: np.ndarray, text_model: TextEmbedder) -> np.ndarray:
        """Cosine of the query sentence with each lexical row's summary (0 where there is none)."""
        with self.lock:
            self._embed_pending_summaries(text_model)
            return self.lexical_row_scores(self.summaries, query)

    def lexical_row_scores(self, vectors: VectorIndex, query: np.ndarray) -> np.ndarray:
        """Cosine of the query with each lexical row's vector in `vectors` (0 where there is none)."""
        with self.lock:
            lexical = self.lexical
            scores = np.zeros(len(lexical.ids), dtype=np.float32)
            if not len(vectors) or query.shape[0] != vectors.dim:
                return scores
            key = (id(lexical), len(lexical.ids), lexical.live_count, id(vectors), vectors.layout)
            cached = self._row_maps.get(vectors.model)
            if cached is None or cached[0] != key:
                rows_of = vectors.rows
                mapping = np.fromiter((rows_of.get(p, -1) for p in lexical.ids), np.int64, len(lexical.ids))
                cached = self._row_maps[vectors.model] = (key, mapping)
            rows = cached[1]
            present = rows >= 0
            scores[present] = vectors.all_scores(query)[rows[present]]
            scores[~lexical.alive[: len(lexical.ids)]] = 0.0
            return scores

    def current_vector_index(self, db: Session, model: str) -> VectorIndex | None:
        """`vector_index` for a versioned model name (`name@version`): other versions are dropped."""
        family = model.split("@", 1)[0]
        with self.lock:
            for stale in [m for m in self.vectors if m != model and m.split("@", 1)[0] == family]:
                del self.vectors[stale]
                self._row_maps.pop(stale, None)
            return self.vector_index(db, model)

    def vector_index(self, db: Session, model: str) -> VectorIndex | None:
        with self.lock:
            if model not in self.vectors:
                self._load_vectors(db, model)
            index = self.vectors[model]
            return index if len(index) else None

    def _load_vectors(self, db: Session, model: str) -> None:
        started = time.perf_counter()
        dim = db.scalar(
            select(PhotoEmbedding.dim)
            .where(PhotoEmbedding.owner_id == self.owner_id, PhotoEmbedding.model == model)
            .limit(1)
        )
        index = VectorIndex(model, int(dim or 0))
        if dim:
            index.load(_embeddings(db, self.owner_id, model, None))
        self.vectors[model] = index
        log.info(
            "vector index %s of owner %s loaded: %d rows, %.0f ms",
            model,
            self.owner_id,
            len(index),
            (time.perf_counter() - started) * 1000,
        )

    def vocabulary(self, text_model: TextEmbedder) -> Vocabulary:
        """The embedded tag/label/category names, re-embedded only when new names appeared."""
        with self.lock:
            key = (id(self.lexical), self.lexical.phrase_version)
            if self._vocabulary is None or self._vocabulary_key != key:
                self._vocabulary = Vocabulary(self.lexical.phrases(), text_model)
                self._vocabulary_key = key
            return self._vocabulary


def _embeddings(
    db: Session, owner_id: str, model: str, photo_ids: list[str] | None
) -> list[tuple[str, np.ndarray]]:
    query = select(PhotoEmbedding.photo_id, PhotoEmbedding.vector).where(PhotoEmbedding.model == model)
    if photo_ids is None:
        query = query.where(PhotoEmbedding.owner_id == owner_id)
    elif not photo_ids:
        return []
    else:
        query = query.where(
            PhotoEmbedding.photo_id.in_(photo_ids), owned_by(PhotoEmbedding.owner_id, owner_id)
        )
    return [(photo_id, np.frombuffer(vector, dtype=np.float32)) for photo_id, vector in db.execute(query)]


_owners: PerOwner[OwnerIndex] = PerOwner(OwnerIndex, MAX_OWNERS)


def owner_index(db: Session, owner_id: str) -> OwnerIndex:
    """The owner's indexes, brought up to date with the database."""
    return _owners.get(db, owner_id)
