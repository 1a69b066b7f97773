"""Face recognition and clustering over face embeddings: pure logic, no database, no HTTP.

* `train(embeddings, person_ids, unlabelled=...)` builds a `FaceClassifier` from the faces a user
  named (one per person is enough). `FaceClassifier.predict` names faces with a calibrated
  confidence and says "unknown" (person_id None) for people it was not taught.
* `assign_exclusive` resolves one photo's predictions so no person appears twice in it.
* `cluster` groups unlabelled faces into suggested people.

How a face is named (measured on the dev faces set, see bench/reports/recognition.md):

1. Candidates are ranked by cosine similarity to each person's centroid (mean of the unit
   embeddings): with 3+ faces a person the centroid ranks better than the nearest face or a linear
   model such as LogisticRegression or LinearSVC (it averages out pose, light and sunglasses).
2. The best candidate is accepted when its *evidence score*, the mean of the two highest cosine
   similarities to that person's faces (the highest when there is only one), reaches
   `ACCEPT_SIMILARITY`. The top-2 mean, unlike the single best match, is not fooled by one odd
   labelled face that happens to resemble a stranger; otherwise the face is "unknown".
3. Self-training: faces of the unlabelled pool passed to `train` whose evidence score reaches
   `PSEUDO_LABEL_SIMILARITY` join their person's support set (two rounds). One labelled face
   then grows into a set that covers more poses, which is what lets k=1 work with a threshold that
   still turns strangers away. User labels are never changed by this.
4. The confidence is a logistic model (sklearn LogisticRegression) of the evidence score and its
   margin over the runner-up: default coefficients measured on the dev set, refitted on the user's
   own labelled faces (leave-one-out trials) when there are enough of them.

All thresholds are for the default embedder (MobileFaceNet-ArcFace 128-d with flip augmentation);
a different embedding model needs them measured again with bench/eval_recognition_bare.py.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from sklearn.cluster import HDBSCAN, AgglomerativeClustering
from sklearn.linear_model import LogisticRegression

__all__ = [
    "ACCEPT_SIMILARITY",
    "CLUSTER_SPLIT_DISTANCE",
    "DEFAULT_CALIBRATION",
    "PSEUDO_LABEL_SIMILARITY",
    "Calibration",
    "Candidate",
    "FaceClassifier",
    "Prediction",
    "RecognitionError",
    "Scores",
    "assign_exclusive",
    "cluster",
    "train",
]

# --- defaults, measured on the dev faces set (bench/reports/recognition.md) -----------------------

# Evidence score (top-2 mean cosine) needed to name a face. ~ the 99.9th percentile of the score a
# face gets against 10 faces of a *different* person (0.265 on the dev set), so a stranger is rarely
# named even when several people are taught; 2% of genuine faces fall below it at 10 labels.
ACCEPT_SIMILARITY = 0.27
# Evidence score for an unlabelled face to join a person's support set in self-training: above all
# but 0.02% of different-person pairs (dev set), a little stricter than naming, so that a wrong
# pseudo-label stays rare and cannot snowball.
PSEUDO_LABEL_SIMILARITY = 0.30
SELF_TRAINING_ROUNDS = 2
TOP_N = 2  # similarities averaged into the evidence score
MARGIN_CAP = 0.3  # beyond this lead over the runner-up, the runner-up tells nothing more
SELF_MATCH = 0.9999  # cosine at which a query is taken to be that very (pseudo-labelled) face

# Calibration logit = a * score + b * min(margin, MARGIN_CAP) + c. Fitted with
# `bench/eval_recognition_bare.py --fit-calibration` on the top candidates of every prediction of
# its protocols on the dev faces set (closed set k = 1, 3, 5, 10 x 20 draws; open set, 3 of 5 people
# taught with k = 10, 10 x 10 draws): ~15 800 predictions. P = 0.5 at an evidence score of ~0.26
# with a clear margin, next to ACCEPT_SIMILARITY, so names and confidences agree.
DEFAULT_CALIBRATION = (29.7, 2.9, -8.6)
# The user's own leave-one-out trials replace the defaults gradually: weight n / (n + this).
CALIBRATION_PRIOR_TRIALS = 200
MIN_CALIBRATION_TRIALS = 30  # fewer genuine trials than this: defaults only

# Clustering: HDBSCAN (no distance threshold to tune; it finds groups of any density). A cluster is
# split (average linkage) where parts are on average nearly unrelated: cosine distance 0.85 is a
# mean similarity of 0.15, well below same-person pairs (median 0.56) and near different-person
# ones (median ~0.0, 99th percentile 0.18).
CLUSTER_SPLIT_DISTANCE = 0.85

FaceId = TypeVar("FaceId", bound=Hashable)


class RecognitionError(ValueError):
    """Bad input to training or clustering (no faces, shape mismatch, non-finite values)."""


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One person a face could be, as ranked by the classifier.

    probability: calibrated chance that the face is this person, given that every higher-ranked
    candidate is ruled out (for the first candidate: the plain confidence). assign_exclusive uses
    it when a better-placed face in the same photo has taken a person.
    """

    person_id: str
    score: float  # evidence score: mean of the top-2 cosine similarities to the person's faces
    best_similarity: float  # highest cosine similarity to one of the person's faces
    probability: float
    accepted: bool  # score reaches the classifier's acceptance threshold


@dataclass(frozen=True)
class Prediction:
    """person_id None means "unknown". confidence is the probability that the answer is right:
    P(named person is correct) for a name, 1 - P(best candidate) for "unknown"."""

    person_id: str | None
    confidence: float
    best_similarity: float  # of the best candidate (of the named person when named)
    candidates: tuple[Candidate, ...] = field(default=(), repr=False)

    @classmethod
    def user_label(cls, person_id: str) -> Prediction:
        """A face the user named: certain, and fixed for assign_exclusive."""
        cand = Candidate(person_id, 1.0, 1.0, 1.0, True)
        return cls(person_id, 1.0, 1.0, (cand,))


# --- calibration ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """Logistic map from (evidence score, margin over the runner-up) to P(correct)."""

    a: float
    b: float
    c: float
    source: str = "default"  # "default" or "user+default (n trials)"

    def probability(self, score: np.ndarray, margin: np.ndarray) -> np.ndarray:
        z = self.a * score + self.b * np.minimum(margin, MARGIN_CAP) + self.c
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0))), dtype=np.float64)

    @classmethod
    def default(cls) -> Calibration:
        return cls(*DEFAULT_CALIBRATION)

    @classmethod
    def fit(cls, score: np.ndarray, margin: np.ndarray, correct: np.ndarray) -> Calibration:
        """Plain logistic regression on trials (used for the defaults and for user refits)."""
        feats = np.column_stack([score, np.minimum(margin, MARGIN_CAP)])
        lr = LogisticRegression(C=10.0).fit(feats, correct.astype(int))
        (a, b), c = lr.coef_[0], lr.intercept_[0]
        return cls(float(a), float(b), float(c), "fitted")


# --- the classifier -------------------------------------------------------------------------------


def _unit_rows(x: np.ndarray, what: str, dim: int | None = None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1 and arr.size and dim is not None and arr.size == dim:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise RecognitionError(f"{what} must be a 2-D array [n, dim], got shape {arr.shape}")
    if dim is not None and arr.shape[0] and arr.shape[1] != dim:
        raise RecognitionError(f"{what} have dimension {arr.shape[1]}, the classifier expects {dim}")
    if not np.isfinite(arr).all():
        raise RecognitionError(f"{what} contain NaN or infinite values")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    # Embeddings are stored unit-norm already; renormalising makes the cosine maths safe anyway.
    return np.asarray(arr / np.maximum(norms, 1e-12), dtype=np.float32)


@dataclass
class Scores:
    """Per-person scores of M faces; columns follow FaceClassifier.person_ids."""

    centroid: np.ndarray  # [M, P] cosine to each person's centroid (ranking)
    evidence: np.ndarray  # [M, P] mean of the top-2 similarities (acceptance, calibration)
    best: np.ndarray  # [M, P] highest similarity


class FaceClassifier:
    """Nearest-centroid ranking + top-2 evidence score + calibrated confidence. Build with `train`."""

    _CHUNK = 4096  # query rows per similarity block: bounds memory for big libraries

    def __init__(
        self,
        support: np.ndarray,
        support_person: np.ndarray,
        support_pseudo: np.ndarray,
        person_ids: list[str],
        accept_similarity: float = ACCEPT_SIMILARITY,
        calibration: Calibration | None = None,
    ) -> None:
        # Faces grouped by person, so each person's similarities are one column slice.
        order = np.argsort(support_person, kind="stable")
        self.support = np.ascontiguousarray(support[order], dtype=np.float32)
        self.support_person = np.asarray(support_person)[order]
        self.support_pseudo = np.asarray(support_pseudo, dtype=bool)[order]
        self._row_of_input = np.argsort(order)  # input row -> row in self.support
        self.person_ids = list(person_ids)
        self.accept_similarity = float(accept_similarity)
        self.calibration = calibration or Calibration.default()
        counts = np.bincount(self.support_person, minlength=len(self.person_ids))
        if len(counts) != len(self.person_ids) or (counts == 0).any():
            raise RecognitionError("every person needs at least one face")
        self._counts = counts
        self._bounds = np.concatenate([[0], np.cumsum(counts)])
        # Per-person sums; cosine to the normalised sum (= mean) ranks people. (sklearn's
        # NearestCentroid computes the same means but refuses a library with a single person.)
        self._sums = np.add.reduceat(self.support, self._bounds[:-1], axis=0).astype(np.float32)
        self._sum_norms = np.linalg.norm(self._sums, axis=1)
        self.dim = int(self.support.shape[1])

    @property
    def n_people(self) -> int:
        return len(self.person_ids)

    @property
    def n_pseudo_labelled(self) -> int:
        """Unlabelled faces that self-training added to a person's support set."""
        return int(self.support_pseudo.sum())

    def pseudo_labels(self) -> dict[str, int]:
        """How many self-trained faces each person has (for logs and reports)."""
        counts = np.bincount(self.support_person[self.support_pseudo], minlength=self.n_people)
        return {p: int(n) for p, n in zip(self.person_ids, counts, strict=True) if n}

    # -- scoring --

    def _scores(self, q: np.ndarray, exclude: np.ndarray) -> Scores:
        """Scores of unit queries q [M, D]; exclude[i] is a support row to ignore for query i, or -1."""
        m, p = len(q), self.n_people
        sims = q @ self.support.T  # [M, S]
        rows = np.flatnonzero(exclude >= 0)
        ex = exclude[rows]
        sims[rows, ex] = -np.inf
        evidence = np.empty((m, p), dtype=np.float32)
        best = np.empty((m, p), dtype=np.float32)
        for j in range(p):
            block = sims[:, self._bounds[j] : self._bounds[j + 1]]
            n = min(TOP_N, block.shape[1])
            top = -np.partition(-block, n - 1, axis=1)[:, :n] if block.shape[1] > n else block
            valid = np.isfinite(top)
            count = valid.sum(axis=1)
            mean = np.where(valid, top, 0.0).sum(axis=1) / np.maximum(count, 1)
            evidence[:, j] = np.where(count > 0, mean, -1.0)
            best[:, j] = np.where(count > 0, top.max(axis=1), -1.0)
        centroid = (q @ self._sums.T) / np.maximum(self._sum_norms, 1e-12)
        if rows.size:
            # A query that is itself a support face is scored against its centroid without it.
            pj = self.support_person[ex]
            adj = self._sums[pj] - self.support[ex]
            norm = np.linalg.norm(adj, axis=1)
            centroid[rows, pj] = np.where(
                norm > 1e-6, (q[rows] * adj).sum(axis=1) / np.maximum(norm, 1e-12), -1.0
            )
        return Scores(centroid.astype(np.float32), evidence, best)

    def _self_matches(self, q: np.ndarray) -> np.ndarray:
        """Row of a pseudo-labelled support face identical to each query, or -1: a pool face that
        self-training added must not vouch for itself when it is predicted."""
        exclude = np.full(len(q), -1, dtype=np.int64)
        pseudo = np.flatnonzero(self.support_pseudo)
        if pseudo.size and len(q):
            sims = q @ self.support[pseudo].T
            hit = sims.max(axis=1) >= SELF_MATCH
            exclude[hit] = pseudo[sims[hit].argmax(axis=1)]
        return exclude

    def score(self, embeddings: np.ndarray, exclude: np.ndarray | None = None) -> Scores:
        """Centroid, evidence and best-similarity scores [M, n_people] (columns follow person_ids)."""
        q = _unit_rows(embeddings, "embeddings", self.dim)
        if exclude is None:
            exclude = self._self_matches(q)
        parts = [
            self._scores(q[i : i + self._CHUNK], exclude[i : i + self._CHUNK])
            for i in range(0, len(q), self._CHUNK)
        ]
        if not parts:
            empty = np.zeros((0, self.n_people), dtype=np.float32)
            return Scores(empty, empty, empty)
        return Scores(
            np.concatenate([s.centroid for s in parts]),
            np.concatenate([s.evidence for s in parts]),
            np.concatenate([s.best for s in parts]),
        )

    # -- prediction --

    def _ranked(self, s: Scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates by centroid [M, P], their evidence scores and conditional probabilities."""
        order = np.argsort(-s.centroid, axis=1, kind="stable")
        ev = np.take_along_axis(s.evidence, order, axis=1)
        # Candidate i competes with those ranked below it (the ones still in play once the ones
        # above are ruled out); the last candidate has no competitor and gets the full margin.
        suffix_max = np.maximum.accumulate(ev[:, ::-1], axis=1)[:, ::-1]  # max of ev[:, i:]
        below = np.concatenate([suffix_max[:, 1:], np.full((len(ev), 1), -np.inf, dtype=ev.dtype)], axis=1)
        margin = np.where(np.isfinite(below), ev - below, MARGIN_CAP)
        return order, ev, self.calibration.probability(ev, margin)

    def predict(self, embeddings: np.ndarray, max_candidates: int = 3) -> list[Prediction]:
        """One Prediction per row, with up to max_candidates ranked candidates (for assign_exclusive)."""
        s = self.score(embeddings)
        if len(s.centroid) == 0:
            return []
        order, ev, prob = self._ranked(s)
        c = max(1, min(max_candidates, self.n_people))
        order, ev, prob = order[:, :c], ev[:, :c], prob[:, :c]
        best = np.take_along_axis(s.best, order, axis=1)
        accepted = ev >= self.accept_similarity
        out: list[Prediction] = []
        for i in range(len(order)):
            cands = tuple(
                Candidate(
                    self.person_ids[order[i, j]],
                    float(ev[i, j]),
                    float(best[i, j]),
                    float(prob[i, j]),
                    bool(accepted[i, j]),
                )
                for j in range(c)
            )
            top = cands[0]
            if top.accepted:
                out.append(Prediction(top.person_id, top.probability, top.best_similarity, cands))
            else:
                out.append(Prediction(None, 1.0 - top.probability, top.best_similarity, cands))
        return out

    # -- leave-one-out trials on the user's own labels (for calibration) --

    def loo_trials(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(score, margin, correct) of the best candidate for each user-labelled face, scored
        (a) without that face: a genuine trial (when its person has another face), and
        (b) without its whole person: a stranger trial, always wrong. Needs 2+ people."""
        labelled = np.flatnonzero(~self.support_pseudo)
        if self.n_people < 2 or labelled.size == 0:
            return np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
        s = self._scores(self.support[labelled], labelled.copy())
        own = self.support_person[labelled]
        rows = np.arange(len(labelled))
        scores, margins, correct = [], [], []
        for stranger in (False, True):
            ev, cen = s.evidence.copy(), s.centroid.copy()
            if stranger:
                ev[rows, own] = -np.inf
                cen[rows, own] = -np.inf
                keep = np.ones(len(labelled), dtype=bool)
            else:
                keep = self._counts[own] > 1
            j = cen.argmax(axis=1)
            top = ev[rows, j].copy()
            ev[rows, j] = -np.inf
            runner = ev.max(axis=1)
            margin = np.where(np.isfinite(runner), top - runner, MARGIN_CAP)
            scores.append(top[keep])
            margins.append(margin[keep])
            correct.append((j == own)[keep] & (not stranger))
        return np.concatenate(scores), np.concatenate(margins), np.concatenate(correct)


def _calibrate(clf: FaceClassifier) -> Calibration:
    """Defaults, shrunk toward a fit on the user's own leave-one-out trials when there are enough."""
    score, margin, correct = clf.loo_trials()
    if int(correct.sum()) < MIN_CALIBRATION_TRIALS or int((~correct).sum()) < MIN_CALIBRATION_TRIALS:
        return Calibration.default()
    user = Calibration.fit(score, margin, correct)
    if user.a <= 0:  # more similarity meaning less likely is noise, not information
        return Calibration.default()
    w = len(score) / (len(score) + CALIBRATION_PRIOR_TRIALS)
    a, b, c = (
        w * u + (1 - w) * d for u, d in zip((user.a, user.b, user.c), DEFAULT_CALIBRATION, strict=True)
    )
    return Calibration(a, b, c, source=f"user+default ({len(score)} trials)")


def train(
    embeddings: np.ndarray,
    person_ids: Sequence[str],
    *,
    unlabelled: np.ndarray | None = None,
    accept_similarity: float = ACCEPT_SIMILARITY,
    pseudo_label_similarity: float = PSEUDO_LABEL_SIMILARITY,
    self_training_rounds: int = SELF_TRAINING_ROUNDS,
    fit_calibration: bool = True,
) -> FaceClassifier:
    """Classifier from the user's labelled faces [N, D] (N >= 1; one face per person is enough).

    unlabelled: embeddings of the library's other faces (same model; recognisable ones), used for
    self-training. Pass them whenever they are at hand: on the dev set they lift k=1 from ~0.89 to
    ~0.98 named correctly at the same stranger rejection.
    """
    x = _unit_rows(embeddings, "embeddings")
    if len(x) == 0:
        raise RecognitionError("cannot train a face classifier without labelled faces")
    if len(person_ids) != len(x):
        raise RecognitionError(f"{len(x)} embeddings but {len(person_ids)} person ids")
    people = sorted({str(p) for p in person_ids})
    index = {p: i for i, p in enumerate(people)}
    labels = np.array([index[str(p)] for p in person_ids], dtype=np.int64)
    no_pseudo = np.zeros(len(x), dtype=bool)
    clf = FaceClassifier(x, labels, no_pseudo, people, accept_similarity)

    pool = None if unlabelled is None else _unit_rows(unlabelled, "unlabelled embeddings", x.shape[1])
    if pool is not None and len(pool):
        # A labelled face passed in the pool as well would only duplicate its own label.
        pool = pool[(pool @ x.T).max(axis=1) < SELF_MATCH]
    if pool is not None and len(pool):
        chosen = np.zeros(len(pool), dtype=bool)
        person = np.full(len(pool), -1, dtype=np.int64)
        for _ in range(self_training_rounds):
            # A pool face already in the support set does not count as evidence for itself.
            exclude = np.full(len(pool), -1, dtype=np.int64)
            exclude[chosen] = clf._row_of_input[len(x) + np.arange(int(chosen.sum()))]
            s = clf.score(pool, exclude=exclude)
            j = s.centroid.argmax(axis=1)
            new = s.evidence[np.arange(len(pool)), j] >= pseudo_label_similarity
            if np.array_equal(new, chosen) and np.array_equal(j[new], person[new]):
                break  # converged
            chosen, person = new, np.where(new, j, -1)
            clf = FaceClassifier(
                np.concatenate([x, pool[chosen]]),
                np.concatenate([labels, person[chosen]]),
                np.concatenate([no_pseudo, np.ones(int(chosen.sum()), dtype=bool)]),
                people,
                accept_similarity,
            )
    if fit_calibration:
        clf.calibration = _calibrate(clf)
    return clf


# --- one photo: no person twice -------------------------------------------------------------------


def assign_exclusive(
    photo_predictions: Sequence[tuple[FaceId, Prediction]],
) -> dict[FaceId, Prediction]:
    """Resolve the predictions of one photo's faces so that no person is named twice.

    Greedy by confidence: the surest (face, person) pair is fixed first; a face whose person is
    taken moves to its next accepted candidate (with that candidate's conditional probability),
    else becomes unknown. User labels (Prediction.user_label, confidence 1) are fixed first.
    """
    result: dict[FaceId, Prediction] = {}
    taken: set[str] = set()
    pending = {i: pred for i, (_, pred) in enumerate(photo_predictions)}
    face_ids = [fid for fid, _ in photo_predictions]

    def options(pred: Prediction) -> list[Candidate]:
        if not pred.candidates and pred.person_id is not None:  # a bare prediction: its name only
            return [Candidate(pred.person_id, pred.confidence, pred.best_similarity, pred.confidence, True)]
        return [c for c in pred.candidates if c.accepted and c.person_id not in taken]

    while pending:
        best_i, best_c = None, None
        for i, pred in pending.items():
            opts = options(pred)
            if opts and (best_c is None or opts[0].probability > best_c.probability):
                best_i, best_c = i, opts[0]
        if best_i is None or best_c is None:
            break
        pred = pending.pop(best_i)
        taken.add(best_c.person_id)
        if pred.person_id == best_c.person_id:
            result[face_ids[best_i]] = pred
        else:
            result[face_ids[best_i]] = Prediction(
                best_c.person_id, best_c.probability, best_c.best_similarity, pred.candidates
            )
    for i, pred in pending.items():  # no person left for these faces
        if pred.person_id is None:
            result[face_ids[i]] = pred
        else:
            p_top = pred.candidates[0].probability if pred.candidates else pred.confidence
            result[face_ids[i]] = Prediction(None, 1.0 - p_top, pred.best_similarity, pred.candidates)
    return result


# --- clustering -----------------------------------------------------------------------------------


def cluster(
    embeddings: np.ndarray,
    min_size: int = 2,
    photo_ids: Sequence[Hashable] | None = None,
) -> list[list[int]]:
    """Suggested groups of faces (row indices), largest first; faces in no group are left out.

    HDBSCAN over the unit embeddings (Euclidean distance on unit vectors orders pairs exactly as
    cosine distance does), then two cheap guards: a cluster whose parts are on average nearly
    unrelated is split (average linkage at CLUSTER_SPLIT_DISTANCE), and when photo_ids is given no
    two faces of one photo stay in a group (the one nearer the group's centroid stays).
    Pass recognisable faces only. Memory grows as N^2 (brute-force distances): ~0.8 GB at 10 000.
    """
    x = _unit_rows(embeddings, "embeddings")
    min_size = max(2, int(min_size))
    if photo_ids is not None and len(photo_ids) != len(x):
        raise RecognitionError(f"{len(x)} embeddings but {len(photo_ids)} photo ids")
    if len(x) < min_size:
        return []
    if len(x) == 2:  # HDBSCAN needs more than two points; a pair is a group when the split rule agrees
        groups = [[0, 1]] if float(x[0] @ x[1]) >= 1.0 - CLUSTER_SPLIT_DISTANCE else []
    else:
        labels = _hdbscan(x, min_size, allow_single_cluster=False)
        if labels.max() < 0:
            # A small library whose unnamed faces are all one person: HDBSCAN's default refuses a
            # single cluster, which would leave the user with no suggestion at all.
            labels = _hdbscan(x, min_size, allow_single_cluster=True)
        groups = [np.flatnonzero(labels == c).tolist() for c in range(labels.max() + 1)]
        groups = [part for g in groups for part in _split_unrelated(x, g, min_size)]
    if photo_ids is not None:
        groups = [_one_face_per_photo(x, g, photo_ids) for g in groups]
    groups = [sorted(g) for g in groups if len(g) >= min_size]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


def _hdbscan(x: np.ndarray, min_size: int, *, allow_single_cluster: bool) -> np.ndarray:
    labels: np.ndarray = HDBSCAN(
        min_cluster_size=min_size,
        metric="euclidean",
        algorithm="brute",
        copy=True,
        allow_single_cluster=allow_single_cluster,
    ).fit_predict(x.astype(np.float64))
    return labels


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
