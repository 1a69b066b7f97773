"""Face recognition and clustering over face embeddings: pure logic, no database, no HTTP.

* `judge(labelled, person_ids, queries, ...)` says of every query face whether it is *named* (one of
  the people the user taught, confidently), *suggested* (a plausible match the model does not assert:
  a look-alike, a relative, a poor photo) or *unknown*.
* `assign_exclusive` resolves one photo's judgements so no person appears twice in it.
* `cluster` groups unlabelled faces into suggested people.

How a face is judged (bars fitted by bench/fit_open_set.py with person-disjoint cross-validation on
LFW and family-disjoint halves of kin_fiw; figures in bench/reports/recognition.md):

1. Each taught person is the centroid (normalised mean) of the unit embeddings of the faces the user
   labelled. A face's raw score for a person is its cosine to that centroid.
2. Scores are Z-normalised per person against a cohort: the library's own unnamed faces. Some
   centroids (one odd photo, a common look) resemble more strangers than others; the mean and spread
   of a person's scores against faces that are clearly not them put every person on one scale.
   Cohort faces scoring COHORT_TRIM or more are left out (they may be that person), and the
   statistics are shrunk towards a prior, so a small library still gets sensible numbers.
3. The best normalised score names the face when it reaches the name bar and leads the runner-up by
   `margin`; it is only suggested when it reaches the suggestion bar; else the face is unknown. The
   bars rise with T, the number of taught people (each one more chance for a stranger to look like
   somebody), and the name bar never falls below a floor fitted on relatives: a face only as close as
   a sibling or a parent usually is gets suggested, not named.
4. Self-training by cluster, only ever from the user's labels (so it cannot snowball): HDBSCAN
   clusters the labelled faces with the library's recognisable faces; a face below the name bar
   (normalised score >= `vouch_floor`, clear of the runner-up, no second person near the suggestion
   bar) is named when its cluster holds labelled faces of its best person and of nobody else, it
   belongs to the cluster firmly and two other faces of it are similar to it. A person's poor photos
   (small, profile, old) join the group of their good ones; a relative's or a stranger's photos form
   groups of their own, and a one-photo stranger HDBSCAN attaches to a group hangs on too weakly.
   Fitted on LFW (bench/fit_open_set.py). Against the one-hop nearest-neighbour rule it replaced
   (bare embeddings, same draws): kin_fiw relatives named 1.6% instead of 4.7%, faces/ at one
   labelled photo per person 0.91 named instead of 0.80.

All bars are for the default embedder (MobileFaceNet-ArcFace 128-d, flip TTA): a different embedding
model needs them fitted again with bench/fit_open_set.py.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import numpy as np
from sklearn.cluster import HDBSCAN, AgglomerativeClustering

__all__ = [
    "CLUSTER_SPLIT_DISTANCE",
    "DEFAULT_BARS",
    "Bars",
    "Decision",
    "FaceState",
    "Judgement",
    "RecognitionError",
    "assign_exclusive",
    "cluster",
    "cluster_evidence",
    "clusters_with_strength",
    "decide",
    "judge",
]

# Clustering: HDBSCAN (no distance threshold to tune; it finds groups of any density). A cluster is
# split (average linkage) where parts are on average nearly unrelated: cosine distance 0.85 is a
# mean similarity of 0.15, well below same-person pairs (median 0.56) and near different-person
# ones (median ~0.0, 99th percentile 0.18).
CLUSTER_SPLIT_DISTANCE = 0.85

FaceId = TypeVar("FaceId", bound=Hashable)


class RecognitionError(ValueError):
    """Bad input to recognition or clustering (shape mismatch, non-finite values)."""


# Cohort faces at or above this cosine to a centroid may be that person: left out of its statistics.
COHORT_TRIM = 0.25
# Prior for the cohort statistics: mean and standard deviation of the cosine between faces of two
# different people below COHORT_TRIM (LFW dev people), worth PRIOR_FACES cohort faces.
PRIOR_MEAN = 0.01
PRIOR_STD = 0.09
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
    # Self-training: a face below the name bar is named when the cluster it shares with the user's
    # labelled faces of its best person (and nobody else's) vouches for it; see _cluster_vouched.
    self_training: bool = True
    vouch_floor: float = 2.0  # lowest normalised score a vouched-for face may have
    # It must belong to the cluster firmly (HDBSCAN membership strength) and have at least two other
    # faces of it at cluster_support or more: a one-photo stranger that HDBSCAN attaches to a taught
    # person's cluster hangs on by a single, weak link.
    cluster_min_strength: float = 0.70
    cluster_support: float = 0.30
    # Clustering needs memory quadratic in the faces (0.2 GB at 5 000): larger libraries, which have
    # more labels to learn from anyway, get no self-training.
    cluster_max_faces: int = 5_000

    @staticmethod
    def _lookup(table: Mapping[int, float], taught: int) -> float:
        keys = sorted(table)
        usable = [key for key in keys if key <= taught] or keys[:1]
        return float(table[usable[-1]])

    def name_bar(self, taught: int) -> float:
        return max(self._lookup(self.name, taught), self.name_floor)

    def suggest_bar(self, taught: int) -> float:
        return self._lookup(self.suggest, taught)


# Fitted by `bench/fit_open_set.py` (bench/reports/recognition.md): name and suggestion bars per
# number of taught people from 0.4% / 1% of LFW strangers' best scores, the floor from 3% of
# kin_fiw relatives' scores (one member taught with 3 photos). Up to 50 taught people the floor is
# the name bar; the table takes over beyond.
# Self-training: the strength, support and score floor that vouch for the most genuine LFW faces
# while naming at most 0.1% of the strangers.
DEFAULT_BARS = Bars(
    name={1: 2.87, 2: 3.12, 3: 3.26, 5: 3.43, 10: 3.66, 20: 3.88, 50: 4.15},
    suggest={1: 2.49, 2: 2.78, 3: 2.94, 5: 3.13, 10: 3.35, 20: 3.59, 50: 3.86},
    name_floor=4.51,
    vouch_floor=2.0,
    cluster_min_strength=0.65,
    cluster_support=0.25,
)


@dataclass(frozen=True)
class Decision:
    """Per query face. person: index of the candidate among the taught people (-1: none)."""

    state: np.ndarray  # [M] FaceState values
    person: np.ndarray  # [M] candidate person index, -1 when nobody is a candidate
    score: np.ndarray  # [M] normalised score of the candidate
    margin: np.ndarray  # [M] lead over the runner-up, normalised units (large when only one person)
    cosine: np.ndarray  # [M] raw cosine to the candidate's centroid
    vouched: np.ndarray  # [M] bool: named by self-training


def unit_rows(x: np.ndarray, what: str = "embeddings") -> np.ndarray:
    """Rows scaled to unit length (stored embeddings already are; this makes the cosine maths safe)."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise RecognitionError(f"{what} must be a 2-D array [n, dim], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise RecognitionError(f"{what} contain NaN or infinite values")
    unit: np.ndarray = arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)
    return unit


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
    labelled_photo: Sequence[object] | None = None,
    clusterable: np.ndarray | None = None,
) -> Decision:
    """Judge every query face against the people the user taught.

    labelled [N, D] unit embeddings with person [N] indices 0..P-1: the user's labelled faces.
    queries [M, D]: the faces to judge (the library's unnamed faces). cohort: faces for the score
    normalisation (default: the queries). query_photo and labelled_photo: each face's photo (two faces
    of one photo are never the same person, so they never vouch for each other nor share a cluster).
    excluded: query row -> people it is not (the user said "not this person"). clusterable [M] bool:
    the query faces good enough to be clustered (default all; the service passes recognisable faces).
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
    x = unit_rows(labelled, "labelled embeddings")
    q = unit_rows(queries, "query embeddings")
    if x.shape[1] != q.shape[1] or len(who) != len(x):
        raise RecognitionError(
            f"{len(x)} labelled faces of dim {x.shape[1]}, {len(who)} person ids, queries of dim {q.shape[1]}"
        )
    n_people = int(who.max()) + 1
    cents = centroids(x, who, n_people)
    cos = q @ cents.T
    coh = q if cohort is None else unit_rows(cohort, "cohort embeddings")
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
    if bars.self_training:
        candidates = ~named & (z1 >= bars.vouch_floor) & clear & (z2 < suggest_bar)
        if candidates.any():
            vouched = _cluster_vouched(
                x, who, q, best, candidates, bars, clusterable, labelled_photo, query_photo
            )
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


def _cluster_vouched(
    x: np.ndarray,
    who: np.ndarray,
    q: np.ndarray,
    best: np.ndarray,
    candidates: np.ndarray,
    bars: Bars,
    clusterable: np.ndarray | None,
    labelled_photo: Sequence[object] | None,
    query_photo: Sequence[object] | None,
) -> np.ndarray:
    """Candidates that HDBSCAN puts firmly in one cluster with user-labelled faces of their best
    person and of nobody else, with two other faces of it at `cluster_support` or more. Clusters
    follow the density of the library, so a person's poor photos (small, profile, old) join the group
    of their good ones where a fixed similarity link would not; a relative or look-alike forms a
    cluster of their own photos and is not vouched for. Only the user's labels vouch (nothing
    snowballs), and a cluster that holds two people's labels vouches for nobody.
    """
    out = np.zeros(len(q), dtype=bool)
    rows = np.flatnonzero(np.ones(len(q), dtype=bool) if clusterable is None else clusterable)
    if len(x) + len(rows) > bars.cluster_max_faces or not candidates[rows].any():
        return out
    found, strength, support = cluster_evidence(
        x, who, q, best, candidates, clusterable, labelled_photo, query_photo
    )
    out[found[(strength >= bars.cluster_min_strength) & (support >= bars.cluster_support)]] = True
    return out


def cluster_evidence(
    x: np.ndarray,
    who: np.ndarray,
    q: np.ndarray,
    best: np.ndarray,
    candidates: np.ndarray,
    clusterable: np.ndarray | None = None,
    labelled_photo: Sequence[object] | None = None,
    query_photo: Sequence[object] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate query rows that share a cluster (labelled faces and the clusterable queries)
    with labelled faces of their best person and of nobody else, each with its HDBSCAN membership
    strength and its support: the second-highest cosine to the other faces of the cluster (two other
    faces at s or more <=> support >= s). What self-training decides on, and what
    bench/fit_open_set.py fits its guards on."""
    rows = np.flatnonzero(np.ones(len(q), dtype=bool) if clusterable is None else clusterable)
    photos: list[Hashable] | None = None
    if query_photo is not None or labelled_photo is not None:
        # A face with no known photo gets one of its own.
        lab_ph = (
            list(labelled_photo) if labelled_photo is not None else [("labelled", i) for i in range(len(x))]
        )
        q_ph = list(query_photo) if query_photo is not None else [("query", i) for i in range(len(q))]
        photos = [*map(str, lab_ph), *(str(q_ph[r]) for r in rows)]
    faces_all = np.concatenate([x, q[rows]])
    groups, strength = clusters_with_strength(faces_all, 2, photos, single_cluster_fallback=False)
    n = len(x)
    found: list[np.ndarray] = []
    strengths: list[np.ndarray] = []
    supports: list[np.ndarray] = []
    for group in groups:
        members = np.asarray(group)
        people = np.unique(who[members[members < n]])
        if len(people) != 1:
            continue
        inside = members[members >= n]
        wanted = inside[candidates[rows[inside - n]] & (best[rows[inside - n]] == people[0])]
        if not len(wanted):
            continue
        sims = faces_all[wanted] @ faces_all[members].T
        sims[np.arange(len(wanted)), np.searchsorted(members, wanted)] = -np.inf  # not itself
        # Fewer than two other faces: -1, below any support a cosine can give.
        second = np.sort(sims, axis=1)[:, -2] if len(members) >= 3 else np.full(len(wanted), -1.0)
        found.append(rows[wanted - n])
        strengths.append(strength[wanted])
        supports.append(second)
    if not found:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, empty
    return np.concatenate(found), np.concatenate(strengths), np.concatenate(supports)


# --- one face, as the service sees it ------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """The model's answer for one face. person_id is the named or suggested person (None: unknown).

    confidence: probability that person_id is right (named or suggested); for unknown, the
    probability that the face is none of the taught people's.
    """

    state: FaceState
    person_id: str | None
    confidence: float
    score: float = field(default=0.0)  # normalised score of the best candidate

    @classmethod
    def user_label(cls, person_id: str) -> Judgement:
        """A face a user named: certain, and fixed first by assign_exclusive."""
        return cls(FaceState.NAMED, person_id, 1.0, math.inf)


# P(candidate is right) = sigmoid(CONFIDENCE_SLOPE * (score - name bar) + CONFIDENCE_OFFSET): logistic
# fit on the best candidates of LFW trials (3 and 20 taught, k = 1, 3, 5) by bench/fit_open_set.py.
# Right at the name bar a candidate is right about 0.3 of the time on LFW (strangers crowd just
# below it); half a unit above, 0.7; one unit above, 0.95.
CONFIDENCE_SLOPE = 3.89
CONFIDENCE_OFFSET = -0.88


def confidence_of(score: np.ndarray, name_bar: float) -> np.ndarray:
    z = CONFIDENCE_SLOPE * (np.asarray(score, dtype=np.float64) - name_bar) + CONFIDENCE_OFFSET
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


def judge(
    labelled: np.ndarray,
    person_ids: Sequence[str],
    queries: np.ndarray,
    *,
    bars: Bars = DEFAULT_BARS,
    cohort: np.ndarray | None = None,
    query_photo: Sequence[Hashable] | None = None,
    rejected: Mapping[int, set[str]] | None = None,
    labelled_photo: Sequence[Hashable] | None = None,
    clusterable: np.ndarray | None = None,
) -> list[Judgement]:
    """`decide` with person ids: one Judgement per query row. rejected: row -> person ids it is not."""
    people = sorted(set(person_ids))
    index = {p: i for i, p in enumerate(people)}
    excluded = {row: {index[p] for p in ps if p in index} for row, ps in (rejected or {}).items()}
    d = decide(
        labelled,
        np.array([index[p] for p in person_ids], dtype=np.int64),
        queries,
        bars=bars,
        cohort=cohort,
        query_photo=query_photo,
        excluded=excluded,
        labelled_photo=labelled_photo,
        clusterable=clusterable,
    )
    p_right = confidence_of(d.score, bars.name_bar(len(people)))
    out = []
    for i, state in enumerate(d.state):
        if state == FaceState.UNKNOWN.value or d.person[i] < 0:
            p = float(p_right[i]) if d.person[i] >= 0 else 0.0
            out.append(Judgement(FaceState.UNKNOWN, None, round(1.0 - p, 4), float(d.score[i])))
        else:
            out.append(
                Judgement(
                    FaceState(state), people[d.person[i]], round(float(p_right[i]), 4), float(d.score[i])
                )
            )
    return out


def assign_exclusive(photo_judgements: Sequence[tuple[FaceId, Judgement]]) -> dict[FaceId, Judgement]:
    """One photo's judgements with no person named or suggested twice.

    The surest claim on a person wins (user labels first, then named faces by score, then
    suggestions); another face of the photo claiming the same person becomes unknown.
    """
    rank = {FaceState.NAMED: 0, FaceState.SUGGESTED: 1, FaceState.UNKNOWN: 2}
    order = sorted(
        range(len(photo_judgements)),
        key=lambda i: (rank[photo_judgements[i][1].state], -photo_judgements[i][1].score),
    )
    taken: set[str] = set()
    result: dict[FaceId, Judgement] = {}
    for i in order:
        face_id, j = photo_judgements[i]
        if j.person_id is not None and j.person_id in taken:
            result[face_id] = Judgement(FaceState.UNKNOWN, None, round(1.0 - j.confidence, 4), j.score)
            continue
        if j.person_id is not None:
            taken.add(j.person_id)
        result[face_id] = j
    return result


# --- clustering -----------------------------------------------------------------------------------


def cluster(
    embeddings: np.ndarray,
    min_size: int = 2,
    photo_ids: Sequence[Hashable] | None = None,
    *,
    single_cluster_fallback: bool = True,
) -> list[list[int]]:
    """Suggested groups of faces (row indices), largest first; faces in no group are left out.

    HDBSCAN over the unit embeddings (Euclidean distance on unit vectors orders pairs exactly as
    cosine distance does), then two cheap guards: a cluster whose parts are on average nearly
    unrelated is split (average linkage at CLUSTER_SPLIT_DISTANCE), and when photo_ids is given no
    two faces of one photo stay in a group (the one nearer the group's centroid stays).
    Pass recognisable faces only. Memory grows as N^2 (brute-force distances): ~0.8 GB at 10 000.
    """
    return clusters_with_strength(embeddings, min_size, photo_ids, single_cluster_fallback)[0]


def clusters_with_strength(
    embeddings: np.ndarray,
    min_size: int,
    photo_ids: Sequence[Hashable] | None,
    single_cluster_fallback: bool,
) -> tuple[list[list[int]], np.ndarray]:
    """`cluster`'s groups and every face's HDBSCAN membership strength (1 for a pair): what
    self-training and its fit (bench/fit_open_set.py) need."""
    x = unit_rows(embeddings)
    min_size = max(2, int(min_size))
    strength = np.ones(len(x))
    if photo_ids is not None and len(photo_ids) != len(x):
        raise RecognitionError(f"{len(x)} embeddings but {len(photo_ids)} photo ids")
    if len(x) < min_size:
        return [], strength
    if len(x) == 2:  # HDBSCAN needs more than two points; a pair is a group when the split rule agrees
        groups = [[0, 1]] if float(x[0] @ x[1]) >= 1.0 - CLUSTER_SPLIT_DISTANCE else []
    else:
        labels, strength = _hdbscan(x, min_size, allow_single_cluster=False)
        if labels.max() < 0 and single_cluster_fallback:
            # A small library whose unnamed faces are all one person: HDBSCAN's default refuses a
            # single cluster, which would leave the user with no suggestion at all.
            labels, strength = _hdbscan(x, min_size, allow_single_cluster=True)
        groups = [np.flatnonzero(labels == c).tolist() for c in range(labels.max() + 1)]
        groups = [part for g in groups for part in _split_unrelated(x, g, min_size)]
    if photo_ids is not None:
        groups = [_one_face_per_photo(x, g, photo_ids) for g in groups]
    groups = [sorted(g) for g in groups if len(g) >= min_size]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups, strength


def _hdbscan(x: np.ndarray, min_size: int, *, allow_single_cluster: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cluster labels (-1: noise) and each face's membership strength (0-1: how long it stays in its
    cluster as the density bar rises, relative to the cluster's most central faces)."""
    model = HDBSCAN(
        min_cluster_size=min_size,
        metric="euclidean",
        algorithm="brute",
        copy=True,
        allow_single_cluster=allow_single_cluster,
    ).fit(x.astype(np.float64))
    return np.asarray(model.labels_), np.asarray(model.probabilities_)


def _split_unrelated(x: np.ndarray, group: list[int], min_size: int) -> list[list[int]]:
    """Split a cluster that joins two or more unrelated groups (each of min_size+ faces). Lone
    outliers HDBSCAN chose to attach stay: the guard is against merged people, not against a hard
    photo of the right person."""
    if len(group) < 2 * min_size:
        return [group]
    dist = np.clip(1.0 - x[group] @ x[group].T, 0.0, 2.0)
    labels = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=CLUSTER_SPLIT_DISTANCE
    ).fit_predict(dist)
    idx = np.asarray(group)
    parts = [idx[labels == c].tolist() for c in np.unique(labels)]
    big = [p for p in parts if len(p) >= min_size]
    return big if len(big) >= 2 else [group]


def _one_face_per_photo(x: np.ndarray, group: list[int], photo_ids: Sequence[Hashable]) -> list[int]:
    centre = x[group].mean(axis=0)
    closeness = x[group] @ centre
    keep: dict[Hashable, int] = {}
    for k in np.argsort(-closeness, kind="stable"):
        keep.setdefault(photo_ids[group[k]], group[k])
    return sorted(keep.values())
