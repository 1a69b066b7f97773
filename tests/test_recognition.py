"""Recognition and clustering on real embeddings of a few real face photos (services/recognition.py)."""

import json
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image, ImageOps

from core.config import Settings
from services.faces.recognition import (
    Candidate,
    Prediction,
    RecognitionError,
    assign_exclusive,
    cluster,
    train,
)
from services.inference.models import ModelSet
from tests.paths import MODEL_DIR, TESTDATA_DIR

FACES_DIR = TESTDATA_DIR / "faces"
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


def test_one_label_per_person_recognises_other_photos(people: dict[str, np.ndarray]) -> None:
    names = _names(people)
    queries = np.concatenate([people[p][1:] for p in names])
    truth = [p for p in names for _ in range(PER_PERSON - 1)]
    unlabelled = queries  # the library's other faces, as the recognise job passes them
    clf = train(np.stack([people[p][0] for p in names]), names, unlabelled=unlabelled)
    predictions = clf.predict(queries)
    right = sum(pred.person_id == t for pred, t in zip(predictions, truth, strict=True))
    assert right / len(truth) >= 0.9
    for pred in predictions:
        assert 0.0 <= pred.confidence <= 1.0
        assert len(pred.candidates) == 3  # ranked, for assign_exclusive
        if pred.person_id is not None:
            assert pred.person_id == pred.candidates[0].person_id


def test_named_faces_are_confident_and_strangers_are_unknown(people: dict[str, np.ndarray]) -> None:
    names = _names(people)
    taught, strangers = names[:3], names[3:]
    emb = np.concatenate([people[p][:2] for p in taught])
    clf = train(emb, [p for p in taught for _ in range(2)])
    stranger_preds = clf.predict(np.concatenate([people[p] for p in strangers]))
    unknown = [pred.person_id is None for pred in stranger_preds]
    assert sum(unknown) / len(unknown) >= 0.85
    known_preds = clf.predict(np.concatenate([people[p][2:] for p in taught]))
    named = [pred for pred in known_preds if pred.person_id is not None]
    assert named and np.mean([pred.confidence for pred in named]) > 0.8


def test_exclusive_in_one_photo(people: dict[str, np.ndarray]) -> None:
    names = _names(people)
    a, b = names[0], names[1]
    clf = train(np.concatenate([people[a][:2], people[b][:2]]), [a, a, b, b])
    # Two photos of person a posing as two faces of one photo: both would be named a.
    p1, p2 = clf.predict(people[a][2:4])
    assert p1.person_id == p2.person_id == a
    resolved = assign_exclusive([("f1", p1), ("f2", p2)])
    assert set(resolved) == {"f1", "f2"}
    named = [r.person_id for r in resolved.values() if r.person_id is not None]
    assert named.count(a) == 1
    winner = max([("f1", p1), ("f2", p2)], key=lambda t: t[1].confidence)[0]
    assert resolved[winner].person_id == a
    # A user's label in the photo takes the person first.
    with_user = assign_exclusive([("f1", p1), ("u", Prediction.user_label(a))])
    assert with_user["u"].person_id == a
    assert with_user["f1"].person_id != a


def test_exclusive_moves_the_less_sure_face_to_its_next_candidate() -> None:
    def pred(*cands: tuple[str, float, bool]) -> Prediction:
        cs = tuple(Candidate(p, 0.5, 0.6, prob, ok) for p, prob, ok in cands)
        return Prediction(cs[0].person_id if cs[0].accepted else None, cs[0].probability, 0.6, cs)

    sure = pred(("ann", 0.95, True), ("bob", 0.02, False))
    unsure = pred(("ann", 0.7, True), ("bob", 0.6, True))
    weak = pred(("ann", 0.6, True), ("cid", 0.1, False))
    out = assign_exclusive([(1, unsure), (2, sure), (3, weak)])
    assert out[2].person_id == "ann"
    assert out[1].person_id == "bob" and out[1].confidence == pytest.approx(0.6)
    assert out[3].person_id is None
    assert out[3].confidence == pytest.approx(0.4)


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


def test_single_person_training_works(people: dict[str, np.ndarray]) -> None:
    names = _names(people)
    only = names[0]
    clf = train(people[only][:1], [only])
    assert clf.person_ids == [only]
    own = clf.predict(people[only][1:])
    others = clf.predict(np.concatenate([people[p] for p in names[1:]]))
    assert sum(p.person_id == only for p in own) >= 2
    assert sum(p.person_id is None for p in others) / len(others) >= 0.85
    assert all(len(p.candidates) == 1 for p in own)


def test_bad_input_raises_clear_errors(people: dict[str, np.ndarray]) -> None:
    with pytest.raises(RecognitionError, match="without labelled faces"):
        train(np.zeros((0, 128), dtype=np.float32), [])
    one = people[_names(people)[0]][:2]
    with pytest.raises(RecognitionError, match="person ids"):
        train(one, ["a"])
    clf = train(one, ["a", "a"])
    with pytest.raises(RecognitionError, match="dimension"):
        clf.predict(np.zeros((1, 64), dtype=np.float32))
    assert clf.predict(np.zeros((0, 128), dtype=np.float32)) == []
    assert cluster(one[:1]) == []
