"""Tags from model outputs: object tags, label tags and category tags, driven by tagging_rules.json.

The rules are data (see docs/tagging-rules.md). They are validated with pydantic when loaded, so a
broken rules file fails at start-up rather than silently tagging nothing. `derive_tags` is pure: the
same detections, labels and faces always give the same tags.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from db.enums import TagKind
from services.inference.objects import COCO80
from services.tagging.thresholds import ObjectThresholds, class_confidences

log = logging.getLogger(__name__)

RULES_PATH = Path(__file__).with_name("tagging_rules.json")
IMAGENET_CLASSES = 1000


class InvalidRules(ValueError):
    """The rules file is malformed; raised at load time with the file and every problem found."""


# ---- inputs and outputs -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DerivedTag:
    name: str
    kind: TagKind
    confidence: float


class DetectionLike(Protocol):
    """What derive_tags needs from a detection (services.inference.objects.Detection fits)."""

    @property
    def class_name(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def box(self) -> Sequence[float]: ...


@dataclass(frozen=True, slots=True)
class _Label:
    name: str
    score: float
    class_id: int | None


@dataclass(frozen=True, slots=True)
class _Face:
    area: float
    score: float


# ---- the rules schema ---------------------------------------------------------------------------


class _Strict(BaseModel):
    # Unknown keys are typos ("treshold") that would otherwise be ignored without a word.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectClassRule(_Strict):
    tag: str | None = None  # rename the object tag; None keeps the class name
    drop: bool = False  # never tag this class
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # overrides the global one
    categories: list[str] = Field(default_factory=list)


class ObjectRules(_Strict):
    note: str | None = None
    threshold: float = Field(ge=0.0, le=1.0)
    evidence_floor: float = Field(ge=0.0, le=1.0)
    classes: dict[str, ObjectClassRule] = Field(default_factory=dict)

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, v: dict[str, ObjectClassRule]) -> dict[str, ObjectClassRule]:
        unknown = sorted(set(v) - set(COCO80))
        if unknown:
            raise ValueError(f"unknown COCO class names: {unknown}")
        return v


class LabelRule(_Strict):
    note: str | None = None
    ids: list[int | tuple[int, int]] = Field(default_factory=list)  # ImageNet indices / inclusive ranges
    names: list[str] = Field(default_factory=list)  # exact label names (case-insensitive)
    pattern: str | None = None  # regular expression searched in the label name (case-insensitive)
    tag: str | None = None  # rename the label tag; None keeps the label's own name
    tags: list[str] = Field(default_factory=list)  # extra generic label tags, e.g. every breed -> "dog"
    drop: bool = False
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    categories: list[str] = Field(default_factory=list)

    @field_validator("ids")
    @classmethod
    def _valid_ids(cls, v: list[int | tuple[int, int]]) -> list[int | tuple[int, int]]:
        for item in v:
            first, last = (item, item) if isinstance(item, int) else item
            if not 0 <= first <= last < IMAGENET_CLASSES:
                raise ValueError(f"bad ImageNet id or range {item!r} (0..{IMAGENET_CLASSES - 1})")
        return v

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"bad regular expression {v!r}: {exc}") from exc
        return v

    @model_validator(mode="after")
    def _matches_something(self) -> LabelRule:
        if not (self.ids or self.names or self.pattern):
            raise ValueError("a label rule needs ids, names or pattern")
        return self

    def id_set(self) -> set[int]:
        out: set[int] = set()
        for item in self.ids:
            first, last = (item, item) if isinstance(item, int) else item
            out.update(range(first, last + 1))
        return out


class LabelRules(_Strict):
    note: str | None = None
    threshold: float = Field(ge=0.0, le=1.0)
    rules: list[LabelRule] = Field(default_factory=list)


class PortraitRule(_Strict):
    min_person_area: float = Field(gt=0.0, le=1.0)  # box area as a fraction of the image
    min_person_height: float = Field(gt=0.0, le=1.0)  # or box height as a fraction (full-length shots)
    min_face_area: float = Field(gt=0.0, le=1.0)
    categories: list[str]


class GroupRule(_Strict):
    min_count: int = Field(ge=2)
    categories: list[str]


class PeopleRules(_Strict):
    note: str | None = None
    min_person_score: float = Field(ge=0.0, le=1.0)
    min_face_score: float = Field(ge=0.0, le=1.0)
    portrait: PortraitRule
    group: GroupRule


class TaggingRules(_Strict):
    version: Literal[1]
    categories: list[str]  # the category vocabulary: every category used below must be listed
    objects: ObjectRules
    labels: LabelRules
    people: PeopleRules

    @model_validator(mode="after")
    def _categories_declared(self) -> TaggingRules:
        declared = set(self.categories)
        used: list[tuple[str, str]] = []
        used += [(f"objects.{k}", c) for k, r in self.objects.classes.items() for c in r.categories]
        used += [(f"labels.rules[{i}]", c) for i, r in enumerate(self.labels.rules) for c in r.categories]
        used += [("people.portrait", c) for c in self.people.portrait.categories]
        used += [("people.group", c) for c in self.people.group.categories]
        bad = [f"{where}: {cat!r}" for where, cat in used if cat not in declared]
        if bad:
            raise ValueError("categories not declared in `categories`: " + "; ".join(bad))
        return self

    @cached_property
    def _label_index(self) -> tuple[np.ndarray, dict[str, int], list[tuple[int, re.Pattern[str]]]]:
        """First matching rule per ImageNet id and per exact name, plus compiled patterns.

        Built once so matching a label is a few lookups; taking the lowest rule index among the
        id, name and pattern candidates keeps "first rule in file order wins".
        """
        none = len(self.labels.rules)
        by_id = np.full(IMAGENET_CLASSES, none, dtype=np.int64)
        by_name: dict[str, int] = {}
        patterns: list[tuple[int, re.Pattern[str]]] = []
        for i in reversed(range(none)):  # reversed: earlier rules overwrite later ones
            rule = self.labels.rules[i]
            ids = np.fromiter(rule.id_set(), dtype=np.int64)
            by_id[ids] = i
            for name in rule.names:
                by_name[_norm(name)] = i
        for i, rule in enumerate(self.labels.rules):
            if rule.pattern:
                patterns.append((i, re.compile(rule.pattern, re.IGNORECASE)))
        return by_id, by_name, patterns

    def label_rule(self, name: str, class_id: int | None) -> LabelRule | None:
        index = self.label_rule_index(name, class_id)
        return None if index is None else self.labels.rules[index]

    def label_rule_index(self, name: str, class_id: int | None) -> int | None:
        """Index of the first label rule matching this label (by id, name or pattern), or None."""
        by_id, by_name, patterns = self._label_index
        none = len(self.labels.rules)
        best = none
        if class_id is not None and 0 <= class_id < IMAGENET_CLASSES:
            best = int(by_id[class_id])
        for synonym in _synonyms(name):
            best = min(best, by_name.get(synonym, none))
        for i, pattern in patterns:
            if i >= best:
                break
            if pattern.search(name):
                best = i
                break
        return best if best < none else None


def parse_rules(data: dict[str, Any], source: str = "<rules>") -> TaggingRules:
    try:
        return TaggingRules.model_validate(data)
    except ValidationError as exc:
        raise InvalidRules(f"invalid tagging rules in {source}:\n{exc}") from exc


@lru_cache
def load_rules(path: Path = RULES_PATH) -> TaggingRules:
    """The rules file, parsed and validated once per process."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidRules(f"cannot read tagging rules {path}: {exc}") from exc
    rules = parse_rules(data, str(path))
    log.info("loaded tagging rules from %s (%d label rules)", path, len(rules.labels.rules))
    return rules


# ---- helpers ------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    return " ".join(name.strip().lower().split())


def _synonyms(name: str) -> list[str]:
    """ImageNet names may come as "tabby, tabby cat": match every comma-separated synonym."""
    return [_norm(part) for part in name.split(",") if part.strip()]


def _label_tag_name(name: str) -> str:
    parts = _synonyms(name)
    return parts[0] if parts else _norm(name)


@lru_cache(maxsize=4)
def _vocabulary(names: tuple[str, ...]) -> dict[str, int]:
    return {_norm(n): i for i, n in enumerate(names)}


def _as_label(item: Any) -> _Label:
    """Accepts an object with name/score (or label/confidence) and optional class_id/index, or a
    tuple (name, score[, class_id]), so the label model's own result type needs no adapter."""
    if isinstance(item, tuple | list):
        class_id = int(item[2]) if len(item) > 2 and item[2] is not None else None
        return _Label(str(item[0]), float(item[1]), class_id)
    name: Any = getattr(item, "name", None) or getattr(item, "label", None)
    score: Any = getattr(item, "score", None)
    if score is None:
        score = getattr(item, "confidence", None)
    if name is None or score is None:
        raise TypeError(f"a label needs a name and a score, got {item!r}")
    found_id = getattr(item, "class_id", None)
    if found_id is None:
        found_id = getattr(item, "index", None)
    return _Label(str(name), float(score), None if found_id is None else int(found_id))


def _as_face(item: Any) -> _Face:
    """A face as [x, y, w, h] (normalised), [x, y, w, h, score], or an object with bbox/box and
    an optional score/detection_score."""
    box: Any
    score: Any
    if isinstance(item, tuple | list | np.ndarray):
        box, score = item[:4], (float(item[4]) if len(item) > 4 else 1.0)
    else:
        box = getattr(item, "bbox", None)
        if box is None:
            box = getattr(item, "box", None)
        if box is None:
            raise TypeError(f"a face needs a bbox, got {item!r}")
        score = getattr(item, "detection_score", None)
        if score is None:
            score = getattr(item, "score", 1.0)
    return _Face(area=float(box[2]) * float(box[3]), score=float(score))


class _TagSet:
    """Collects tags unique by (name, kind), keeping the highest confidence."""

    def __init__(self) -> None:
        self._best: dict[tuple[str, TagKind], float] = {}

    def add(self, name: str, kind: TagKind, confidence: float) -> None:
        key = (name, kind)
        if confidence > self._best.get(key, -1.0):
            self._best[key] = confidence

    def add_categories(self, categories: Iterable[str], confidence: float) -> None:
        # A category's confidence is that of its strongest evidence.
        for category in categories:
            self.add(category, TagKind.category, confidence)

    def result(self) -> list[DerivedTag]:
        order = {"object": 0, "label": 1, "category": 2}
        tags = [DerivedTag(name, kind, round(conf, 4)) for (name, kind), conf in self._best.items()]
        return sorted(tags, key=lambda t: (order[t.kind], -t.confidence, t.name))


def object_thresholds_for(rules: TaggingRules, fitted: ObjectThresholds | None) -> ObjectThresholds:
    """The detector's fitted thresholds (object_thresholds.json) or, for a model without an entry there,
    the rules' own evidence floor and global threshold."""
    if fitted is not None:
        return fitted
    return ObjectThresholds(rules.objects.evidence_floor, rules.objects.threshold)


def _object_tags(
    detections: Sequence[DetectionLike],
    rules: TaggingRules,
    thresholds: ObjectThresholds,
    out: _TagSet,
) -> None:
    obj = rules.objects
    # Noisy-OR per class of the detections at or above the floor (see services/tagging/thresholds.py).
    confidences = class_confidences(
        ((d.class_name, float(d.score)) for d in detections), thresholds.evidence_floor
    )
    for class_name, confidence in confidences.items():
        rule = obj.classes.get(class_name) or ObjectClassRule()
        if rule.drop:
            continue
        # A threshold written into the rules by hand wins over the fitted one.
        threshold = thresholds.for_class(class_name) if rule.threshold is None else rule.threshold
        if confidence < threshold:
            continue
        out.add(rule.tag or class_name, TagKind.object, confidence)
        out.add_categories(rule.categories, confidence)


def _label_tags(
    labels: Iterable[Any], rules: TaggingRules, label_names: Sequence[str] | None, out: _TagSet
) -> None:
    vocabulary: dict[str, int] | None = None
    group_scores: dict[int, float] = {}
    for raw in labels:
        label = _as_label(raw)
        class_id = label.class_id
        if class_id is None:
            if vocabulary is None:
                vocabulary = _vocabulary(tuple(label_names) if label_names is not None else ())
            class_id = vocabulary.get(_norm(label.name))
        index = rules.label_rule_index(label.name, class_id)
        rule = rules.labels.rules[index] if index is not None else None
        if rule is not None and rule.drop:
            continue
        if index is not None:
            group_scores[index] = group_scores.get(index, 0.0) + label.score
        threshold = rules.labels.threshold if rule is None or rule.threshold is None else rule.threshold
        if label.score >= threshold:
            out.add(
                rule.tag if rule and rule.tag else _label_tag_name(label.name), TagKind.label, label.score
            )
    # A rule's generic tags and categories use the summed probability of its labels: softmax classes
    # exclude each other, so "miniature poodle 0.24 + standard poodle 0.15 + toy poodle 0.10" is 0.49
    # that the photo shows a dog, even though no single breed is sure.
    for index, total in group_scores.items():
        rule = rules.labels.rules[index]
        confidence = min(total, 1.0)
        if confidence < (rules.labels.threshold if rule.threshold is None else rule.threshold):
            continue
        for generic in rule.tags:
            out.add(generic, TagKind.label, confidence)
        out.add_categories(rule.categories, confidence)


def _people_tags(
    detections: Sequence[DetectionLike], face_boxes: Sequence[Any] | None, rules: TaggingRules, out: _TagSet
) -> None:
    people = rules.people
    persons = [d for d in detections if d.class_name == "person" and d.score >= people.min_person_score]
    person_scores = np.sort(np.asarray([d.score for d in persons], dtype=np.float64))[::-1]
    faces = [f for f in map(_as_face, face_boxes or []) if f.score >= people.min_face_score]
    face_scores = np.sort(np.asarray([f.score for f in faces], dtype=np.float64))[::-1]

    # Group photo: at least min_count people, counted by person boxes or by faces, whichever sees
    # more. Its confidence is the min_count-th best score: the evidence that that many are there.
    k = people.group.min_count
    group_conf = max(
        float(person_scores[k - 1]) if person_scores.size >= k else 0.0,
        float(face_scores[k - 1]) if face_scores.size >= k else 0.0,
    )
    if group_conf > 0.0:
        out.add_categories(people.group.categories, group_conf)
        return  # a group photo is not a portrait

    # Portrait: one prominent person (large box) or one large face, and no second one of either.
    portrait = people.portrait
    prominent = [
        d
        for d in persons
        if d.box[2] * d.box[3] >= portrait.min_person_area or d.box[3] >= portrait.min_person_height
    ]
    large_faces = [f for f in faces if f.area >= portrait.min_face_area]
    if len(prominent) > 1 or len(large_faces) > 1:
        return
    evidence = [d.score for d in prominent] + [f.score for f in large_faces]
    if evidence:
        out.add_categories(portrait.categories, float(max(evidence)))


# ---- the entry point ----------------------------------------------------------------------------


def derive_tags(
    detections: Sequence[DetectionLike],
    labels: Iterable[Any],
    face_boxes: Sequence[Any] | None = None,
    rules: TaggingRules | None = None,
    label_names: Sequence[str] | None = None,
    object_thresholds: ObjectThresholds | None = None,
) -> list[DerivedTag]:
    """Tags for one photo.

    detections: the detector's output for the photo, kept at or below the evidence floor
    (`detect(images, score_threshold=thresholds.evidence_floor)`) so weak detections can add up.
    object_thresholds: the detector's fitted tag thresholds (`load_object_thresholds(model name)`);
    None uses the rules' global floor and threshold.
    labels: classifier results: (name, score[, class_id]) tuples or objects with name and score.
    label_names: the classifier's class names, index = ImageNet id, to find the id of a label given
    by name only (default: the label model's `.labels.json` in the model directory).
    face_boxes: normalised [x, y, w, h] boxes (optionally with a score) from the face detector.
    Returns tags unique by (name, kind), objects first, each kind by confidence.
    """
    rules = rules or load_rules()
    out = _TagSet()
    _object_tags(detections, rules, object_thresholds_for(rules, object_thresholds), out)
    _label_tags(labels, rules, label_names, out)
    _people_tags(detections, face_boxes, rules, out)
    return out.result()
