"""Recognition (named / suggested / unknown) and clustering on real embeddings of real face photos."""

import json
from collections import defaultdict
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageOps

from core.config import Settings
from services.faces.recognition import (
    DEFAULT_BARS,
    FaceState,
    Judgement,
    RecognitionError,
    assign_exclusive,
    cluster,
    decide,
    judge,
)
from services.inference.models import ModelSet
from tests.paths import MODEL_DIR, TESTDATA_DIR

FACES_DIR = TESTDATA_DIR / "faces"
KIN_DIR = TESTDATA_DIR / "kin_fiw"
# FIW family F0004: member MID4 taught with 3 photos; 2 more of MID4, and 8 photos of relatives
# (parent, siblings). Picked once from the dev families: their relatives score in the suggestion band.
KIN_TAUGHT = ["kin_00086.jpg", "kin_01264.jpg", "kin_02348.jpg"]
KIN_OWN = ["kin_02529.jpg", "kin_02963.jpg"]
KIN_RELATIVES = [
    "kin_00227.jpg",
    "kin_00245.jpg",
    "kin_00392.jpg",
    "kin_00796.jpg",
    "kin_01081.jpg",
    "kin_01297.jpg",
    "kin_01383.jpg",
    "kin_01411.jpg",
]
PER_PERSON = 4  # photos embedded per person: enough to label one and recognise the others


@pytest.fixture(scope="module")
def people() -> dict[str, np.ndarray]:
    """Person -> [PER_PERSON, 128] main-face embeddings of their first recognisable photos.

    Photos are taken in file-name order (names carry no meaning), so the pick is fixed but arbitrary.
    """
    truth: dict[str, str] = json.loads((FACES_DIR / "ground_truth.json").read_text())
    by_person: dict[str, list[str]] = defaultdict(list)
    for name in sorted(truth):
        by_person[truth[name]].append(name)
    settings = Settings(model_dir=MODEL_DIR)
    # The manifest's default detector and embedder, loaded from tests/paths.MODEL_DIR.
    analyzer = ModelSet(settings).faces
    out: dict[str, np.ndarray] = {}
    for person, names in sorted(by_person.items()):
        images = []
        for name in names[: PER_PERSON + 4]:  # a few spare photos in case some faces are unusable
            with Image.open(FACES_DIR / "images" / name) as im:
                images.append(ImageOps.exif_transpose(im).convert("RGB"))
        embeddings = []
        for faces in analyzer.analyze(images):
            main = max(faces, key=lambda f: f.detection.area_px, default=None)
            if main is not None and main.quality.recognisable:
                embeddings.append(main.embedding)
        assert len(embeddings) >= PER_PERSON, f"too few usable faces of {person}"
        out[person] = np.stack(embeddings[:PER_PERSON])
    return out


def _names(people: dict[str, np.ndarray]) -> list[str]:
    return sorted(people)


@pytest.fixture(scope="module")
def kin() -> dict[str, np.ndarray]:
    """Embeddings of the F0004 crops (tight 108x124 face crops, straight through the face pipeline)."""
    settings = Settings(model_dir=MODEL_DIR)
    analyzer = ModelSet(settings).faces
    out = {}
    for key, names in (("taught", KIN_TAUGHT), ("own", KIN_OWN), ("relatives", KIN_RELATIVES)):
        images = [ImageOps.exif_transpose(Image.open(KIN_DIR / "images" / n)).convert("RGB") for n in names]
        faces = analyzer.analyze(images)
        assert all(faces), f"no face found in a {key} crop"
        out[key] = np.stack([max(f, key=lambda r: r.detection.area_px).embedding for f in faces])
    return out


def test_taught_people_are_named_and_strangers_never(people: dict[str, np.ndarray]) -> None:
    names = _names(people)
    taught, strangers = names[:3], names[3:]
    labelled = np.concatenate([people[p][:2] for p in taught])
    queries = np.concatenate([people[p][2:] for p in taught] + [people[p] for p in strangers])
    truth = [p for p in taught for _ in range(PER_PERSON - 2)] + [None] * (len(strangers) * PER_PERSON)
    result = judge(labelled, [p for p in taught for _ in range(2)], queries)
    for j, t in zip(result, truth, strict=True):
        assert 0.0 <= j.confidence <= 1.0
        if t is None:
            assert j.state != FaceState.NAMED, "a stranger was named"
        elif j.state != FaceState.UNKNOWN:
            assert j.person_id == t, "a taught face was given somebody else"
    named = [j for j, t in zip(result, truth, strict=True) if t is not None and j.state == FaceState.NAMED]
    assert len(named) >= 0.8 * (len(truth) - truth.count(None))
    assert np.mean([j.confidence for j in named]) > 0.8


def test_relatives_are_suggested_not_named(kin: dict[str, np.ndarray]) -> None:
    queries = np.concatenate([kin["own"], kin["relatives"]])
    result = judge(kin["taught"], ["mid4"] * 3, queries)
    own, relatives = result[: len(KIN_OWN)], result[len(KIN_OWN) :]
    assert all(j.state == FaceState.NAMED and j.person_id == "mid4" for j in own)
    assert not any(j.state == FaceState.NAMED for j in relatives)
    suggested = [j for j in relatives if j.state == FaceState.SUGGESTED]
    assert suggested and all(j.person_id == "mid4" for j in suggested)
    # A suggestion is less sure than a name.
    assert max(j.confidence for j in suggested) < min(j.confidence for j in own)


def test_the_name_bar_never_falls_below_the_relatives_floor() -> None:
    for taught in (1, 2, 3, 5, 10, 20, 50, 1000):
        assert DEFAULT_BARS.name_bar(taught) >= DEFAULT_BARS.name_floor
        assert DEFAULT_BARS.suggest_bar(taught) < DEFAULT_BARS.name_bar(taught)
    assert DEFAULT_BARS.suggest_bar(20) > DEFAULT_BARS.suggest_bar(1), "more people, higher bar"


def test_a_rejected_person_is_never_given_again(people: dict[str, np.ndarray]) -> None:
    names = _names(people)
    a, b = names[0], names[1]
    labelled = np.concatenate([people[a][:2], people[b][:2]])
    queries = people[a][2:]
    before = judge(labelled, [a, a, b, b], queries)
    assert before[0].person_id == a
    after = judge(labelled, [a, a, b, b], queries, rejected={0: {a}})
    assert after[0].person_id != a and after[0].state != FaceState.NAMED
    assert after[1] == before[1], "a rejection touches only its face"


def test_self_training_vouches_only_from_the_users_labels(people: dict[str, np.ndarray]) -> None:
    """Every face named by self-training shares a cluster with labelled faces of its person and of
    nobody else: pseudo-labels never vouch for further faces, so nothing can snowball. With it off,
    nothing is vouched."""
    names = _names(people)
    labelled = np.stack([people[p][0] for p in names])
    queries = np.concatenate([people[p][1:] for p in names])
    who = np.arange(len(names))
    d = decide(labelled, who, queries)
    direct = (d.state == FaceState.NAMED.value) & ~d.vouched
    groups = cluster(np.concatenate([labelled, queries]), min_size=2, single_cluster_fallback=False)
    cluster_people = {}
    for group in groups:
        members = np.asarray(group)
        for row in members[members >= len(labelled)] - len(labelled):
            cluster_people[int(row)] = set(who[members[members < len(labelled)]].tolist())
    assert d.vouched.any(), "one photo per person leaves faces for self-training to name"
    for i in np.flatnonzero(d.vouched):
        assert cluster_people.get(int(i)) == {int(d.person[i])}
        assert d.score[i] >= DEFAULT_BARS.vouch_floor
    off = decide(labelled, who, queries, bars=replace(DEFAULT_BARS, self_training=False))
    assert not off.vouched.any()
    too_many = decide(labelled, who, queries, bars=replace(DEFAULT_BARS, cluster_max_faces=len(queries)))
    assert not too_many.vouched.any(), "a library above the clustering cap gets no self-training"
    assert set(np.flatnonzero(off.state == FaceState.NAMED.value)) == set(np.flatnonzero(direct))


def test_a_cluster_with_two_peoples_labels_vouches_for_nobody(people: dict[str, np.ndarray]) -> None:
    """Label a second face of a person as somebody else: their cluster now holds two people's labels,
    and none of their other faces may be named through it."""
    names = _names(people)
    checked = 0
    for j in range(len(names)):
        other = (j + 1) % len(names)
        firsts = np.stack([people[p][0] for p in names])
        rest = np.concatenate([people[p][1:] for p in names])
        start = sum(len(people[p]) - 1 for p in names[:j])  # person j's faces in rest: start .. start+2
        honest = decide(firsts, np.arange(len(names)), rest)
        if not honest.vouched[start + 1 : start + 3].any():
            continue
        checked += 1
        mixed = decide(
            np.concatenate([firsts, rest[start : start + 1]]),
            np.array([*range(len(names)), other]),
            np.delete(rest, start, axis=0),
        )
        assert not mixed.vouched[start : start + 2].any()
    assert checked, "no person had a face named through their cluster"


def test_exclusive_in_one_photo(people: dict[str, np.ndarray]) -> None:
    names = _names(people)
    a, b = names[0], names[1]
    j1, j2 = judge(np.concatenate([people[a][:2], people[b][:2]]), [a, a, b, b], people[a][2:4])
    assert j1.person_id == j2.person_id == a
    # Two photos of person a posing as two faces of one photo: only the surer keeps a.
    resolved = assign_exclusive([("f1", j1), ("f2", j2)])
    assert [r.person_id for r in resolved.values()].count(a) == 1
    winner = "f1" if j1.score >= j2.score else "f2"
    assert resolved[winner].person_id == a
    # A user's label in the photo takes the person first.
    with_user = assign_exclusive([("f1", j1), ("u", Judgement.user_label(a))])
    assert with_user["u"].person_id == a and with_user["f1"].person_id is None


def test_clusters_group_the_same_person(people: dict[str, np.ndarray]) -> None:
    names = _names(people)
    emb = np.concatenate([people[p] for p in names])
    truth = np.repeat(np.arange(len(names)), PER_PERSON)
    groups = cluster(emb, min_size=2)
    assert groups, "no cluster found"
    assert [len(g) for g in groups] == sorted((len(g) for g in groups), reverse=True)
    for g in groups:
        assert len(set(truth[g].tolist())) == 1, "a cluster mixes people"
    clustered = sum(len(g) for g in groups)
    assert clustered >= 0.75 * len(emb)
    # Two faces of one photo never share a cluster.
    photo_ids = list(range(len(emb)))
    photo_ids[1] = photo_ids[0]
    for g in cluster(emb, min_size=2, photo_ids=photo_ids):
        assert not (0 in g and 1 in g)


def test_single_person_taught_works(people: dict[str, np.ndarray]) -> None:
    names = _names(people)
    only = names[0]
    own = judge(people[only][:1], [only], people[only][1:])
    others = judge(people[only][:1], [only], np.concatenate([people[p] for p in names[1:]]))
    assert sum(j.person_id == only and j.state == FaceState.NAMED for j in own) >= 2
    assert not any(j.state == FaceState.NAMED for j in others)


def test_bad_input_raises_clear_errors(people: dict[str, np.ndarray]) -> None:
    one = people[_names(people)[0]][:2]
    nobody = judge(np.zeros((0, 128), dtype=np.float32), [], one)
    assert [(j.state, j.person_id) for j in nobody] == [(FaceState.UNKNOWN, None)] * 2
    with pytest.raises(RecognitionError, match="person ids"):
        decide(one, np.array([0]), one)
    with pytest.raises(RecognitionError, match="dim"):
        judge(one, ["a", "a"], np.zeros((1, 64), dtype=np.float32))
    with pytest.raises(RecognitionError, match="NaN"):
        judge(one, ["a", "a"], np.full((1, 128), np.nan, dtype=np.float32))
    assert judge(one, ["a", "a"], np.zeros((0, 128), dtype=np.float32)) == []
    assert cluster(one[:1]) == []
