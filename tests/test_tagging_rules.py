"""Tagging rules: the shipped rules file validates, derive_tags gives the expected tags and categories,
and a malformed rules file fails loudly."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from services.inference.objects import Detection
from services.tagging.rules import RULES_PATH, DerivedTag, InvalidRules, derive_tags, load_rules, parse_rules


def det(name: str, score: float, box: tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)) -> Detection:
    return Detection(class_name=name, class_id=0, score=score, box=box)


def names(tags: list[DerivedTag], kind: str) -> set[str]:
    return {t.name for t in tags if t.kind == kind}


def conf(tags: list[DerivedTag], name: str, kind: str) -> float:
    return next(t.confidence for t in tags if t.name == name and t.kind == kind)


@pytest.fixture(scope="module")
def raw_rules() -> dict[str, Any]:
    return json.loads(RULES_PATH.read_text())


def test_shipped_rules_load_and_cover_most_imagenet_classes() -> None:
    rules = load_rules()
    covered = set().union(*(r.id_set() for r in rules.labels.rules))
    assert len(covered) >= 800  # groups, not 1000 hand-written entries
    assert rules.label_rule("anything", 207).tags == ["dog"]  # Golden Retriever is in the dog range
    assert rules.label_rule("anything", 281).tags == ["cat"]  # tabby cat


def test_dog_detection_gives_animals_and_pets() -> None:
    tags = derive_tags([det("dog", 0.8)], [])
    assert names(tags, "object") == {"dog"}
    assert {"animals", "pets"} <= names(tags, "category")
    assert conf(tags, "animals", "category") == pytest.approx(0.8)


def test_imagenet_labels_give_fine_and_generic_tags() -> None:
    labels = [("espresso", 0.6, 967), ("Golden Retriever", 0.7, 207), ("seashore, coast", 0.4, 978)]
    tags = derive_tags([], labels)
    assert {"espresso", "golden retriever", "dog", "seashore", "beach"} <= names(tags, "label")
    assert {"food", "drinks", "animals", "pets", "beach", "nature"} <= names(tags, "category")
    assert conf(tags, "food", "category") == pytest.approx(0.6)


def test_labels_below_threshold_are_ignored() -> None:
    tags = derive_tags([], [("espresso", 0.05, 967), ("jigsaw puzzle", 0.5, 611)])
    assert tags == []  # jigsaw puzzle needs 0.6: texture-like classes are frequent false guesses


def test_label_objects_with_attributes_are_accepted() -> None:
    class Label:
        def __init__(self, name: str, score: float, class_id: int) -> None:
            self.name, self.score, self.class_id = name, score, class_id

    tags = derive_tags([], [Label("minibus", 0.5, 654)])
    assert {"minibus", "bus"} <= names(tags, "label")
    assert "vehicles" in names(tags, "category")


def test_four_people_make_a_group_photo() -> None:
    people = [det("person", s) for s in (0.9, 0.85, 0.7, 0.6)]
    tags = derive_tags(people, [])
    assert {"group photo", "people"} <= names(tags, "category")
    assert "portrait" not in names(tags, "category")
    # Confidence of "at least three" is the third-best person score.
    assert conf(tags, "group photo", "category") == pytest.approx(0.7)


def test_three_faces_make_a_group_photo() -> None:
    faces = [[0.1, 0.1, 0.05, 0.05, 0.9], [0.3, 0.1, 0.05, 0.05, 0.8], [0.5, 0.1, 0.05, 0.05, 0.95]]
    assert "group photo" in names(derive_tags([], [], face_boxes=faces), "category")


def test_portrait_from_one_large_person_or_face() -> None:
    one_big = [det("person", 0.9, (0.2, 0.05, 0.5, 0.9)), det("person", 0.6, (0.9, 0.5, 0.05, 0.1))]
    assert "portrait" in names(derive_tags(one_big, []), "category")
    face_only = derive_tags([], [], face_boxes=[[0.3, 0.2, 0.3, 0.4]])
    assert "portrait" in names(face_only, "category")
    two_big = [det("person", 0.9, (0.0, 0.1, 0.4, 0.9)), det("person", 0.9, (0.5, 0.1, 0.4, 0.9))]
    assert "portrait" not in names(derive_tags(two_big, []), "category")
    small = [det("person", 0.9, (0.4, 0.4, 0.05, 0.1))]
    assert "portrait" not in names(derive_tags(small, []), "category")


def test_weak_detections_add_up_and_tags_are_unique() -> None:
    """One weak car is not enough; three weak cars are (noisy-OR); duplicates collapse to the max."""
    rules = load_rules()
    weak = rules.objects.threshold * 0.8
    assert "car" not in names(derive_tags([det("car", weak)], []), "object")
    tags = derive_tags([det("car", weak), det("car", weak), det("car", weak)], [])
    assert [t.name for t in tags if t.kind == "object"] == ["car"]
    assert conf(tags, "car", "object") == pytest.approx(1 - (1 - weak) ** 3, abs=1e-4)
    below_floor = derive_tags([det("car", rules.objects.evidence_floor / 2)] * 10, [])
    assert below_floor == []


def test_rules_can_be_passed_in(raw_rules: dict[str, Any]) -> None:
    data = copy.deepcopy(raw_rules)
    data["objects"]["classes"]["dog"] = {"drop": True}
    data["objects"]["classes"]["cat"] = {"tag": "kitty", "categories": ["pets"]}
    rules = parse_rules(data)
    tags = derive_tags([det("dog", 0.9), det("cat", 0.9)], [], rules=rules)
    assert names(tags, "object") == {"kitty"}
    assert names(tags, "category") == {"pets"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["objects"]["classes"].update({"dinning table": {}}), "unknown COCO class"),
        (lambda d: d["objects"].update({"threshold": 1.5}), "less than or equal to 1"),
        (lambda d: d["objects"]["classes"]["dog"].update({"categories": ["anmals"]}), "not declared"),
        (lambda d: d["labels"]["rules"].append({"ids": [[300, 1200]]}), "bad ImageNet id"),
        (lambda d: d["labels"]["rules"].append({"categories": ["food"]}), "needs ids, names or pattern"),
        (lambda d: d["labels"]["rules"].append({"pattern": "(unclosed"}), "bad regular expression"),
        (lambda d: d["people"]["group"].update({"min_cont": 3}), "Extra inputs"),
        (lambda d: d.pop("labels"), "labels"),
    ],
)
def test_malformed_rules_are_rejected(raw_rules: dict[str, Any], mutate: Any, message: str) -> None:
    data = copy.deepcopy(raw_rules)
    mutate(data)
    with pytest.raises(InvalidRules, match=message):
        parse_rules(data)


def test_unreadable_rules_file_fails_loudly(tmp_path: Path) -> None:
    bad = tmp_path / "rules.json"
    bad.write_text('{"version": 1, "objects": ')
    with pytest.raises(InvalidRules, match="cannot read"):
        load_rules(bad)


def test_labels_given_by_name_find_their_imagenet_id() -> None:
    """The labeler returns (name, probability): the id comes from its own index-aligned names."""
    vocabulary = [f"class {i}" for i in range(1000)]
    vocabulary[207], vocabulary[967] = "golden retriever", "espresso"
    tags = derive_tags([], [("golden retriever", 0.7), ("espresso", 0.5)], label_names=vocabulary)
    assert {"golden retriever", "dog", "espresso"} <= names(tags, "label")
    assert {"animals", "pets", "food", "drinks"} <= names(tags, "category")


def test_group_tags_add_up_exclusive_label_probabilities() -> None:
    """No single poodle breed reaches the label threshold, but together they say "dog"."""
    labels = [("miniature poodle", 0.14, 266), ("standard poodle", 0.12, 267), ("toy poodle", 0.1, 265)]
    tags = derive_tags([], labels)
    assert names(tags, "label") == {"dog"}
    assert conf(tags, "dog", "label") == pytest.approx(0.36)
    assert {"animals", "pets"} <= names(tags, "category")
