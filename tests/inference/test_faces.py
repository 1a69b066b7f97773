"""The face model layer on real photos: both detectors, alignment onto the template, embeddings."""

import json
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from services.images import load_oriented
from services.inference.face_align import ARCFACE_112, align_face
from services.inference.faces import FaceAnalyzer, FaceDetector, FaceEmbedder, load_face_detector
from tests.paths import TESTDATA_DIR

FACES_DIR = TESTDATA_DIR / "faces"
TRUTH: dict[str, str] = json.loads((FACES_DIR / "ground_truth.json").read_text())


def by_person() -> dict[str, list[str]]:
    people: dict[str, list[str]] = defaultdict(list)
    for name, person in sorted(TRUTH.items()):
        people[person].append(name)
    return people


def photo(name: str) -> Image.Image:
    return load_oriented((FACES_DIR / "images" / name).read_bytes(), max_side=1280)


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()


@pytest.fixture(scope="module", params=["yunet", "mtcnn"])
def detector(request: pytest.FixtureRequest) -> FaceDetector:
    return load_face_detector(request.param)


def test_each_detector_finds_faces_with_landmarks_inside_the_box(detector: FaceDetector) -> None:
    names = [names[0] for names in by_person().values()]
    results = detector.detect([photo(n) for n in names])
    assert sum(bool(faces) for faces in results) >= len(names) - 1, detector.name
    for faces in results:
        for face in faces:
            x, y, w, h = face.box
            assert min(x, y) >= 0 and x + w <= 1.0001 and y + h <= 1.0001 and 0 < face.score <= 1
            points = np.asarray(face.landmarks)
            assert points.shape == (5, 2)
            inside = (points[:, 0] >= x - 0.05 * w) & (points[:, 0] <= x + 1.05 * w)
            assert inside.all() and points[0, 0] < points[1, 0], "eyes left to right, inside the box"


def test_alignment_puts_the_eyes_on_the_template() -> None:
    image = photo(by_person()[sorted(by_person())[0]][0])
    face = max(load_face_detector("yunet").detect([image])[0], key=lambda f: f.box[2] * f.box[3])
    crop, matrix = align_face(image, face.landmarks_px(), ARCFACE_112)
    assert crop.size == (112, 112)
    mapped = np.c_[face.landmarks_px(), np.ones(5)] @ np.asarray(matrix).T
    assert np.abs(mapped[:2] - ARCFACE_112.points[:2]).max() < 6, "eyes land near the template's eyes"


def test_same_person_is_closer_than_other_people(embedder: FaceEmbedder) -> None:
    analyzer = FaceAnalyzer(detector=load_face_detector("yunet"), embedder=embedder)
    people = by_person()
    chosen = sorted(people)[:3]
    vectors: dict[str, list[np.ndarray]] = {}
    for person in chosen:
        results = analyzer.analyze([photo(n) for n in people[person][:2]])
        vectors[person] = [
            max(r, key=lambda f: f.detection.box[2] * f.detection.box[3]).embedding for r in results
        ]
    for person in chosen:
        for vector in vectors[person]:
            assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
        same = float(vectors[person][0] @ vectors[person][1])
        others = [float(vectors[person][0] @ v) for p in chosen if p != person for v in vectors[p]]
        assert same > max(others), person


def test_batched_embeddings_equal_single_runs(embedder: FaceEmbedder) -> None:
    image = photo(sorted(TRUTH)[0])
    face = load_face_detector("yunet").detect([image])[0][0]
    crop, _ = align_face(image, face.landmarks_px(), ARCFACE_112)
    flipped = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    together = embedder.embed([crop, flipped])
    apart = np.concatenate([embedder.embed([crop]), embedder.embed([flipped])])
    assert np.abs(together - apart).max() < 1e-4
