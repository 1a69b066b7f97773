"""Nearest neighbours by cosine over one owner's image embeddings (one model), in memory.

Vectors are unit length, so cosine is a dot product; rows are float32 (a float16 copy halves the
memory but converting rows back costs more than the whole search). Up to `REDUCE_ABOVE` rows every
query is scored exactly. Past that, a PCA basis (uncentred, `REDUCED_DIM` dims) gives every row a
cheap approximate score; rows are then taken in windows in that order and scored exactly, best first
within each window (measured recall in bench/reports/search.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import numpy as np

log = logging.getLogger(__name__)

REDUCE_ABOVE = 4096
REDUCED_DIM = 128
FIT_SAMPLE = 20_000
# Rows scored exactly in the first window of an approximate search; later windows double.
FIRST_WINDOW = 512
# Pairs whose approximate cosine is this far below a duplicate threshold are not checked exactly.
PAIR_MARGIN = 0.1


class VectorIndex:
    def __init__(self, model: str, dim: int) -> None:
        self.model = model
        self.dim = dim
        self.ids: list[str] = []
        self.rows: dict[str, int] = {}
        self.full = np.zeros((0, dim), dtype=np.float32)
        self.alive = np.zeros(0, dtype=bool)
        self.basis: np.ndarray | None = None  # [dim, REDUCED_DIM]
        self.reduced = np.zeros((0, REDUCED_DIM), dtype=np.float32)
        self.residual = np.zeros(0, dtype=np.float32)
        self.fitted_rows = 0
        # Counters that let callers cache what they derive: `layout` moves when rows come or go,
        # `mutations` on any change; `changed_at` says at which mutation each photo last changed.
        self.layout = 0
        self.mutations = 0
        self.changed_at: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def _grow(self, size: int) -> None:
        capacity = self.full.shape[0]
        if size <= capacity:
            return
        capacity = max(size, 2 * capacity, 64)
        self.full = _resized(self.full, capacity)
        self.alive = _resized(self.alive, capacity)
        if self.basis is not None:
            self.reduced = _resized(self.reduced, capacity)
            self.residual = _resized(self.residual, capacity)

    def load(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        for photo_id, vector in items:
            self.upsert(photo_id, vector, refit=False)
        self._maybe_fit()

    def upsert(self, photo_id: str, vector: np.ndarray, refit: bool = True) -> None:
        if vector.shape != (self.dim,):
            log.warning("embedding of photo %s has shape %s, expected %d", photo_id, vector.shape, self.dim)
            return
        row = self.rows.get(photo_id)
        if row is None:
            row = len(self.ids)
            self._grow(row + 1)
            self.ids.append(photo_id)
            self.rows[photo_id] = row
            self.layout += 1
        elif np.array_equal(self.full[row], vector):
            return  # a re-read of an unchanged embedding (its photo's tags changed, say)
        self.mutations += 1
        self.changed_at[photo_id] = self.mutations
        self.full[row] = vector
        self.alive[row] = True
        if self.basis is not None:
            self._project(np.asarray([row]))
        if refit:
            self._maybe_fit()

    def remove(self, photo_id: str) -> None:
        row = self.rows.pop(photo_id, None)
        if row is not None:
            self.alive[row] = False
            self.layout += 1
            self.mutations += 1
            self.changed_at[photo_id] = self.mutations

    def vector(self, photo_id: str) -> np.ndarray | None:
        row = self.rows.get(photo_id)
        return None if row is None else self.full[row].copy()

    def _maybe_fit(self) -> None:
        live = len(self.rows)
        if live <= REDUCE_ABOVE or (self.basis is not None and live < 2 * self.fitted_rows):
            return
        rows = np.flatnonzero(self.alive[: len(self.ids)])
        sample = rows if rows.size <= FIT_SAMPLE else np.random.default_rng(0).choice(rows, FIT_SAMPLE, False)
        x = self.full[np.sort(sample)]
        # Uncentred: the subspace that best keeps dot products, which is what we rank by.
        _, eigenvectors = np.linalg.eigh(x.T @ x)
        self.basis = np.ascontiguousarray(eigenvectors[:, ::-1][:, :REDUCED_DIM].astype(np.float32))
        self.reduced = np.zeros((self.full.shape[0], REDUCED_DIM), dtype=np.float32)
        self.residual = np.zeros(self.full.shape[0], dtype=np.float32)
        for start in range(0, len(self.ids), 8192):
            self._project(np.arange(start, min(start + 8192, len(self.ids))))
        self.fitted_rows = live
        kept = float(np.mean(1 - self.residual[rows] ** 2)) if rows.size else 1.0
        log.info(
            "vector index %s: %d rows, PCA %d dims keeps %.3f of the energy",
            self.model,
            live,
            REDUCED_DIM,
            kept,
        )

    def _project(self, rows: np.ndarray) -> None:
        assert self.basis is not None
        x = self.full[rows]
        reduced = x @ self.basis
        self.reduced[rows] = reduced
        self.residual[rows] = np.sqrt(
            np.maximum(np.sum(x * x, axis=1) - np.sum(reduced * reduced, axis=1), 0)
        )

    def exact(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = self.full[rows] @ query
        return scores

    def all_scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of every row (dead rows 0): exact when small, else from the PCA part alone, which is
        what a soft ranking signal needs at a tenth of the cost."""
        count = len(self.ids)
        query = np.asarray(query, dtype=np.float32)
        if self.basis is None:
            scores = self.full[:count] @ query if count else np.zeros(0, np.float32)
        else:
            scores = self.reduced[:count] @ (query @ self.basis)
        scores[~self.alive[:count]] = 0.0
        return scores

    def ranked(
        self, query: np.ndarray, exclude: str | None = None, only: set[str] | None = None
    ) -> Iterator[tuple[str, float]]:
        """Every live row (or those of `only`) as (photo id, cosine), best first (exact below
        REDUCE_ABOVE rows; above, exact within windows taken in approximate order), ties by id;
        computed lazily."""
        query = np.asarray(query, dtype=np.float32)
        count = len(self.ids)
        if not len(self.rows):
            return
        skip = self.rows.get(exclude) if exclude else None
        if only is not None:
            rows = np.asarray(sorted(self.rows[p] for p in only if p in self.rows and p != exclude), np.int64)
            yield from self._exact_sorted(query, rows)
            return
        if self.basis is None:
            rows = np.flatnonzero(self.alive[:count])
            if skip is not None:
                rows = rows[rows != skip]
            yield from self._exact_sorted(query, rows)
            return
        approximate = self.reduced[:count] @ (query @ self.basis)
        approximate[~self.alive[:count]] = -np.inf
        if skip is not None:
            approximate[skip] = -np.inf
        window = FIRST_WINDOW
        while True:
            rows = _top(approximate, window)
            rows = rows[np.isfinite(approximate[rows])]
            if not rows.size:
                return
            approximate[rows] = -np.inf
            yield from self._exact_sorted(query, rows)
            window *= 2

    def _exact_sorted(self, query: np.ndarray, rows: np.ndarray) -> Iterator[tuple[str, float]]:
        if rows.size:
            yield from sorted_stream(self.ids, rows, self.exact(query, rows))

    def pairs_above(
        self, threshold: float, photo_ids: list[str] | None = None
    ) -> list[tuple[str, str, float]]:
        """Pairs of live rows with cosine >= threshold (for near-duplicate groups): all of them, or those
        involving `photo_ids`. Blocks of rows against all rows, on the PCA part when there is one (a
        margin below the threshold), then checked exactly."""
        count = len(self.ids)
        rows = np.flatnonzero(self.alive[:count])
        if photo_ids is None:
            queries = rows
        else:
            queries = np.asarray([self.rows[p] for p in photo_ids if p in self.rows], dtype=np.int64)
        space = self.reduced if self.basis is not None else self.full
        cutoff = threshold - PAIR_MARGIN if self.basis is not None else threshold
        others = space[rows]
        found: dict[tuple[int, int], float] = {}
        for start in range(0, queries.size, 512):
            block = queries[start : start + 512]
            local, other = np.nonzero(space[block] @ others.T >= cutoff)
            a, b = block[local], rows[other]
            keep = a != b
            a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
            if not a.size:
                continue
            exact = np.einsum("ij,ij->i", self.full[a], self.full[b])
            for i, j, score in zip(a.tolist(), b.tolist(), exact.tolist(), strict=True):
                if score >= threshold:
                    found[(i, j)] = score
        return [(self.ids[i], self.ids[j], score) for (i, j), score in found.items()]


def sorted_stream(ids: list[str], rows: np.ndarray, scores: np.ndarray) -> Iterator[tuple[str, float]]:
    """(ids[rows[i]], scores[i]) by score descending, ties by id; sorted lazily: the best
    FIRST_WINDOW first (a partition, not a sort of everything), the rest only if someone reads on."""
    if scores.size > FIRST_WINDOW:
        cutoff = scores[np.argpartition(-scores, FIRST_WINDOW - 1)[FIRST_WINDOW - 1]]
        head = np.flatnonzero(scores >= cutoff)  # every tie of the cutoff comes along
        yield from _sorted_chunks(ids, rows[head], scores[head])
        tail = np.flatnonzero(scores < cutoff)
        yield from _sorted_chunks(ids, rows[tail], scores[tail])
    else:
        yield from _sorted_chunks(ids, rows, scores)


def _sorted_chunks(ids: list[str], rows: np.ndarray, scores: np.ndarray) -> Iterator[tuple[str, float]]:
    order = np.argsort(-scores, kind="stable")
    descending = -scores[order]
    start = 0
    while start < order.size:
        end = min(start + 256, order.size)
        # Extend the chunk to the end of its run of equal scores, so ties are sorted together.
        end = int(np.searchsorted(descending, descending[end - 1], side="right"))
        chunk = [(ids[rows[i]], float(scores[i])) for i in order[start:end].tolist()]
        chunk.sort(key=lambda item: (-item[1], item[0]))
        yield from chunk
        start = end


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` largest values (any order)."""
    if count >= values.size:
        return np.arange(values.size)
    return np.argpartition(-values, count)[:count]


def _resized(array: np.ndarray, rows: int) -> np.ndarray:
    grown = np.zeros((rows, *array.shape[1:]), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown
