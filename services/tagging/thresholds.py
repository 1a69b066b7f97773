"""Object-tag thresholds per detector model: the data, how tags use it, and how it is fitted.

A photo's confidence for a COCO class is the noisy-OR of that class's detections scoring at least
`evidence_floor`; the class becomes a tag when that confidence reaches the class's threshold (its own
where the data supported one, else the model's global one). Scores mean different things for
different detectors, so the numbers are per model, in object_thresholds.json beside this file,
written by `bench/fit_tag_thresholds.py` with the procedure below (never edited by hand):

1. On the dev detection set, for every (floor, global threshold) on a grid, count image-class
   true/false positives and misses; keep the pair that maximises the objective (the smaller of the
   two margins over the SPEC bars, precision - 0.87 and recall - 0.71, so neither bar is traded away).
2. For each class with at least `min_support` training images that contain it, move its threshold
   alone over the grid to the value that maximises the same objective (all other classes fixed),
   then shrink it towards the global one by its support n: t = t_global + (t_fit - t_global) * n / (n + k).
   Rare classes keep the global threshold: a handful of photos cannot justify their own.
3. Cross-validation (k-fold over images, repeated with fixed seeds) fits steps 1-2 on the training
   folds and counts on the held-out fold, for the global-only and the per-class variants, so the
   report shows what transfers to unseen photos, not only the in-sample figure. The per-class
   thresholds are stored only when they beat the global one there by `min_cv_gain` or more.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

THRESHOLDS_PATH = Path(__file__).with_name("object_thresholds.json")


@dataclass(frozen=True, slots=True)
class ObjectThresholds:
    """How one detector's detections become object tags."""

    evidence_floor: float
    threshold: float
    classes: Mapping[str, float] = field(default_factory=dict)

    def for_class(self, class_name: str) -> float:
        return self.classes.get(class_name, self.threshold)

    def as_json(self) -> dict[str, Any]:
        return {
            "evidence_floor": round(self.evidence_floor, 4),
            "threshold": round(self.threshold, 4),
            "classes": {name: round(value, 4) for name, value in sorted(self.classes.items())},
        }


def class_confidences(detections: Iterable[tuple[str, float]], evidence_floor: float) -> dict[str, float]:
    """Noisy-OR per class of the (class name, score) pairs scoring >= evidence_floor.

    The chance that at least one of the (assumed independent) detections is right: several weak
    detections of one class corroborate each other, one alone must reach the threshold by itself.
    """
    misses: dict[str, float] = {}
    for class_name, score in detections:
        if score >= evidence_floor:
            misses[class_name] = misses.get(class_name, 1.0) * (1.0 - float(score))
    return {class_name: 1.0 - miss for class_name, miss in misses.items()}


@lru_cache(maxsize=4)
def _load_file(path: Path) -> dict[str, ObjectThresholds]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        name: ObjectThresholds(
            evidence_floor=float(entry["evidence_floor"]),
            threshold=float(entry["threshold"]),
            classes={str(k): float(v) for k, v in entry.get("classes", {}).items()},
        )
        for name, entry in data["models"].items()
    }


def load_object_thresholds(model_name: str, path: Path = THRESHOLDS_PATH) -> ObjectThresholds | None:
    """The fitted thresholds of that detector model, or None when it has none (rules' defaults apply)."""
    return _load_file(path).get(model_name)


# ---- fitting ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FitSettings:
    # Lower floors tag no better under cross-validation on the dev set but store 2-3x more boxes per
    # photo (every detection at or above the floor is kept).
    floors: tuple[float, ...] = (0.03, 0.05, 0.07, 0.1)
    thresholds: tuple[float, ...] = tuple(round(0.1 + 0.01 * i, 2) for i in range(51))  # 0.10 .. 0.60
    min_support: int = 8  # training images containing the class before it may get its own threshold
    shrinkage: float = 8.0  # k in t_global + (t_fit - t_global) * n / (n + k)
    precision_bar: float = 0.87
    recall_bar: float = 0.71
    # Per-class thresholds are kept only when they beat the global one under cross-validation by this
    # much of the objective (about 2 of 362 image-class pairs): smaller differences are fold noise.
    min_cv_gain: float = 0.005


@dataclass(frozen=True, slots=True)
class TagCounts:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def __add__(self, other: TagCounts) -> TagCounts:
        return TagCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def objective(counts: TagCounts, settings: FitSettings) -> float:
    return min(counts.precision - settings.precision_bar, counts.recall - settings.recall_bar)


@dataclass(frozen=True, slots=True)
class _Pairs:
    """Every (image, class) candidate of a set of images at one floor, as flat arrays."""

    confidence: np.ndarray  # noisy-OR confidence of a predicted class
    correct: np.ndarray  # bool: the class is in that image's ground truth
    class_index: np.ndarray
    positives: int  # (image, class) pairs in the ground truth
    support: np.ndarray  # images containing each class


def _pairs(
    detections: Sequence[Sequence[tuple[str, float]]],
    truths: Sequence[set[str]],
    floor: float,
    class_names: Sequence[str],
) -> _Pairs:
    index = {name: i for i, name in enumerate(class_names)}
    confidence: list[float] = []
    correct: list[bool] = []
    class_index: list[int] = []
    support = np.zeros(len(class_names), dtype=np.int64)
    for found, truth in zip(detections, truths, strict=True):
        for name in truth:
            support[index[name]] += 1
        for name, value in class_confidences(found, floor).items():
            confidence.append(value)
            correct.append(name in truth)
            class_index.append(index[name])
    return _Pairs(
        np.asarray(confidence, dtype=np.float64),
        np.asarray(correct, dtype=bool),
        np.asarray(class_index, dtype=np.int64),
        int(support.sum()),
        support,
    )


def _counts(pairs: _Pairs, per_pair_threshold: np.ndarray) -> TagCounts:
    tagged = pairs.confidence >= per_pair_threshold
    tp = int(np.count_nonzero(tagged & pairs.correct))
    return TagCounts(tp, int(np.count_nonzero(tagged)) - tp, pairs.positives - tp)


def fit_thresholds(
    detections: Sequence[Sequence[tuple[str, float]]],
    truths: Sequence[set[str]],
    class_names: Sequence[str],
    settings: FitSettings = FitSettings(),
    per_class: bool = True,
) -> ObjectThresholds:
    """Steps 1 and 2 of the module's procedure on these images (detections[i] belongs to truths[i])."""
    grid = np.asarray(settings.thresholds)
    best: tuple[float, float, float, _Pairs] | None = None  # objective, floor, threshold, pairs
    for floor in settings.floors:
        pairs = _pairs(detections, truths, floor, class_names)
        for threshold in grid:
            score = objective(_counts(pairs, np.full(pairs.confidence.shape, threshold)), settings)
            # Strictly better only: ties keep the lower floor and the lower threshold (grid order).
            if best is None or score > best[0] + 1e-12:
                best = (score, floor, float(threshold), pairs)
    assert best is not None
    _, floor, global_threshold, pairs = best
    if not per_class:
        return ObjectThresholds(floor, global_threshold)

    class_threshold = np.full(len(class_names), global_threshold)
    eligible = np.flatnonzero(pairs.support >= settings.min_support)
    for c in eligible[np.argsort(-pairs.support[eligible], kind="stable")]:
        trial = class_threshold.copy()
        scores = []
        for threshold in grid:
            trial[c] = threshold
            scores.append(objective(_counts(pairs, trial[pairs.class_index]), settings))
        values = np.asarray(scores)
        top = np.flatnonzero(values >= values.max() - 1e-12)
        # Among equally good thresholds take the one nearest the global: move only when it pays.
        class_threshold[c] = grid[top[np.argmin(np.abs(grid[top] - global_threshold))]]
    classes: dict[str, float] = {}
    for c in eligible.tolist():
        n = float(pairs.support[c])
        shrunk = global_threshold + (class_threshold[c] - global_threshold) * n / (n + settings.shrinkage)
        if abs(shrunk - global_threshold) > 1e-9:
            classes[class_names[c]] = float(shrunk)
    return ObjectThresholds(floor, global_threshold, classes)


def tag_counts(
    detections: Sequence[Sequence[tuple[str, float]]],
    truths: Sequence[set[str]],
    thresholds: ObjectThresholds,
) -> TagCounts:
    """Image-class counts of the tags these thresholds give (the same rule the service applies)."""
    total = TagCounts(0, 0, 0)
    for found, truth in zip(detections, truths, strict=True):
        tagged = {
            name
            for name, value in class_confidences(found, thresholds.evidence_floor).items()
            if value >= thresholds.for_class(name)
        }
        total = total + TagCounts(len(tagged & truth), len(tagged - truth), len(truth - tagged))
    return total


@dataclass(frozen=True, slots=True)
class CrossValidation:
    global_only: TagCounts
    per_class: TagCounts
    folds: int
    repeats: int


def cross_validate(
    detections: Sequence[Sequence[tuple[str, float]]],
    truths: Sequence[set[str]],
    class_names: Sequence[str],
    settings: FitSettings = FitSettings(),
    folds: int = 5,
    repeats: int = 5,
    seed: int = 0,
) -> CrossValidation:
    """Held-out counts pooled over `repeats` shuffles of a `folds`-fold split of the images."""
    rng = np.random.default_rng(seed)
    n = len(detections)
    pooled = {False: TagCounts(0, 0, 0), True: TagCounts(0, 0, 0)}
    for _ in range(repeats):
        order = rng.permutation(n)
        for held in np.array_split(order, folds):
            held_set = set(held.tolist())
            train = [i for i in range(n) if i not in held_set]
            for per_class in (False, True):
                fitted = fit_thresholds(
                    [detections[i] for i in train],
                    [truths[i] for i in train],
                    class_names,
                    settings,
                    per_class=per_class,
                )
                pooled[per_class] = pooled[per_class] + tag_counts(
                    [detections[i] for i in held], [truths[i] for i in held], fitted
                )
    return CrossValidation(pooled[False], pooled[True], folds, repeats)


def per_class_gain(cv: CrossValidation, settings: FitSettings = FitSettings()) -> tuple[bool, float]:
    """(keep the per-class thresholds?, their cross-validated objective gain over global-only)."""
    gain = objective(cv.per_class, settings) - objective(cv.global_only, settings)
    return gain >= settings.min_cv_gain, gain
