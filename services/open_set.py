"""Open-set face naming: named, suggested or unknown. Pure numpy, no database.

How a face is judged (bars fitted by bench/fit_open_set.py with person-disjoint cross-validation on
LFW; bench/reports/recognition.md):

1. Each taught person is the centroid (normalised mean) of the unit embeddings of the faces the user
   labelled. A face's raw score for a person is its cosine to that centroid.
2. Scores are Z-normalised per person against a cohort: the library's own unnamed faces. Some
   people (and some centroids, e.g. of one photo) simply resemble more strangers than others; the
   mean and spread of a person's scores against faces that are clearly not them put every person on
   one scale, so one bar fits people with tight and with spread-out photos. Cohort faces scoring
   COHORT_TRIM or more are left out (they may be that person), and the statistics are shrunk towards
   a prior fitted on LFW, so a small library still gets sensible numbers.
3. The best normalised score names the face when it reaches `name_bar(T)` and leads the runner-up
   by `margin`; it is only *suggested* when it reaches `suggest_bar(T)`; else the face is unknown.
   T is the number of taught people: every extra person is one more chance for a stranger to look
   like somebody, so the bar rises with T (fitted per T, not assumed).
4. Self-training, one hop, never on its own results (so it cannot snowball): a face that reached
   only the suggestion bar is named when one of its mutual nearest neighbours among the library's
   faces is similar to it by LINK_SIMILARITY or more, was named as the same person on the user's
   labels alone, sits in another photo, and the face is not close to a second taught person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

__all__ = [
    "DEFAULT_BARS",
    "Bars",
    "Decision",
    "FaceState",
    "decide",
]

# Cohort faces at or above this cosine to a centroid may be that person: left out of its statistics.
COHORT_TRIM = 0.25
# Prior for the cohort statistics (mean and standard deviation of the cosine of a face of somebody
# else to a one-photo centroid; LFW dev people), worth PRIOR_FACES cohort faces.
PRIOR_MEAN = 0.0
PRIOR_STD = 0.08
PRIOR_FACES = 30


class FaceState(StrEnum):
    NAMED = "named"
    SUGGESTED = "suggested"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Bars:
    """Bars on the normalised score by number of taught people (the largest key <= T applies)."""

    name: Mapping[int, float]
    suggest: Mapping[int, float]
    # Look-alikes: the lowest name bar whatever T, fitted on relatives (kin_fiw); below it, a face
    # as close as a sibling or parent typically is gets suggested, not named.
    name_floor: float = 0.0
    margin: float = 0.5  # lead over the runner-up (normalised units) needed to name
    link_similarity: float = 0.40  # self-training: cosine between a face and the named face vouching for it
    mutual_neighbours: int = 5
    vouch_floor: float = 2.0  # self-training: lowest normalised score a vouched-for face may have
    self_training: bool = True

    @staticmethod
    def _lookup(table: Mapping[int, float], taught: int) -> float:
        keys = sorted(table)
        usable = [key for key in keys if key <= taught] or keys[:1]
        return float(table[usable[-1]])

    def name_bar(self, taught: int) -> float:
        return max(self._lookup(self.name, taught), self.name_floor)

    def suggest_bar(self, taught: int) -> float:
        return self._lookup(self.suggest, taught)


# Placeholders until bench/fit_open_set.py has run.
DEFAULT_BARS = Bars(name={1: 3.5, 20: 3.9}, suggest={1: 2.8, 20: 3.2})


@dataclass(frozen=True)
class Decision:
    """Per query face. person: index of the candidate among the taught people (-1: none)."""

    state: np.ndarray  # [M] FaceState values
    person: np.ndarray  # [M] candidate person index, -1 when nobody is a candidate
    score: np.ndarray  # [M] normalised score of the candidate
    margin: np.ndarray  # [M] lead over the runner-up, normalised units (large when only one person)
    cosine: np.ndarray  # [M] raw cosine to the candidate's centroid
    vouched: np.ndarray  # [M] bool: named by self-training


def unit_rows(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array, got shape {arr.shape}")
    return arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)


def centroids(labelled: np.ndarray, person: np.ndarray, n_people: int) -> np.ndarray:
    sums = np.zeros((n_people, labelled.shape[1]), dtype=np.float64)
    np.add.at(sums, person, labelled)
    return unit_rows(sums)


def cohort_statistics(cohort_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per person (column): mean and std of the cohort's cosines below COHORT_TRIM, shrunk to the prior."""
    keep = cohort_scores < COHORT_TRIM
    n = keep.sum(axis=0)
    values = np.where(keep, cohort_scores, 0.0)
    mean = values.sum(axis=0) / np.maximum(n, 1)
    var = (np.where(keep, (cohort_scores - mean) ** 2, 0.0)).sum(axis=0) / np.maximum(n, 1)
    w = n / (n + PRIOR_FACES)
    mean_s = w * mean + (1 - w) * PRIOR_MEAN
    # Shrink the variance too, around the shrunk mean (a small cohort must not look tight by chance).
    var_s = w * (var + (mean - mean_s) ** 2) + (1 - w) * (PRIOR_STD**2 + (PRIOR_MEAN - mean_s) ** 2)
    return mean_s, np.sqrt(np.maximum(var_s, 1e-6))


def decide(
    labelled: np.ndarray,
    person: Sequence[int] | np.ndarray,
    queries: np.ndarray,
    *,
    bars: Bars = DEFAULT_BARS,
    cohort: np.ndarray | None = None,
    query_photo: Sequence[object] | None = None,
    excluded: Mapping[int, set[int]] | None = None,
) -> Decision:
    """Judge every query face against the people the user taught.

    labelled [N, D] unit embeddings with person [N] indices 0..P-1: the user's labelled faces.
    queries [M, D]: the faces to judge (the library's unnamed faces). cohort: faces for the score
    normalisation (default: the queries). query_photo: each query's photo (self-training never lets a
    face vouch for another face of its own photo). excluded: query row -> people it is not (the user
    said "not this person").
    """
    who = np.asarray(person, dtype=np.int64)
    m = len(queries)
    if len(who) == 0 or m == 0:
        return Decision(
            np.full(m, FaceState.UNKNOWN.value, dtype=object),
            np.full(m, -1, dtype=np.int64),
            np.zeros(m),
            np.zeros(m),
            np.zeros(m),
            np.zeros(m, dtype=bool),
        )
    x = unit_rows(labelled)
    q = unit_rows(queries)
    n_people = int(who.max()) + 1
    cents = centroids(x, who, n_people)
    cos = q @ cents.T
    coh = q if cohort is None else unit_rows(cohort)
    mean, std = cohort_statistics(coh @ cents.T if len(coh) else np.zeros((0, n_people)))
    z = (cos - mean) / std
    for row, people in (excluded or {}).items():
        z[row, sorted(people)] = -np.inf
    rows = np.arange(m)
    order = np.argsort(-z, axis=1, kind="stable")
    best = order[:, 0]
    z1 = z[rows, best]
    if n_people > 1:
        z2 = z[rows, order[:, 1]]
        margin = np.where(np.isfinite(z2), z1 - z2, np.inf)
    else:
        z2 = np.full(m, -np.inf)
        margin = np.full(m, np.inf)
    name_bar, suggest_bar = bars.name_bar(n_people), bars.suggest_bar(n_people)
    clear = margin >= bars.margin
    named = (z1 >= name_bar) & clear
    suggested = ~named & (z1 >= suggest_bar)
    vouched = np.zeros(m, dtype=bool)
    if bars.self_training and named.any():
        candidates = ~named & (z1 >= bars.vouch_floor) & clear & (z2 < suggest_bar)
        vouched = _vouched(q, best, named, candidates, query_photo, bars)
        named |= vouched
        suggested &= ~vouched
    state = np.full(m, FaceState.UNKNOWN.value, dtype=object)
    state[suggested] = FaceState.SUGGESTED.value
    state[named] = FaceState.NAMED.value
    finite = np.isfinite(z1)
    return Decision(
        state,
        np.where(finite, best, -1),
        np.where(finite, z1, -np.inf),
        margin,
        np.where(finite, cos[rows, best], -1.0),
        vouched,
    )


def _vouched(
    q: np.ndarray,
    best: np.ndarray,
    named: np.ndarray,
    candidates: np.ndarray,
    query_photo: Sequence[object] | None,
    bars: Bars,
) -> np.ndarray:
    """Candidates that have a mutual nearest neighbour named (directly) as their own best person."""
    sims = q @ q.T
    np.fill_diagonal(sims, -np.inf)
    if query_photo is not None:
        photo = np.asarray([hash(p) for p in query_photo])
        sims[photo[:, None] == photo[None, :]] = -np.inf
    n = min(bars.mutual_neighbours, len(q) - 1)
    if n < 1:
        return np.zeros(len(q), dtype=bool)
    kth = -np.partition(-sims, n - 1, axis=1)[:, n - 1]
    link = (sims >= kth[:, None]) & (sims >= kth[None, :]) & (sims >= bars.link_similarity)
    link &= named[None, :] & (best[None, :] == best[:, None])
    return candidates & link.any(axis=1)
