"""The face model layer on real photos: both detectors, alignment onto the template, embeddings,
quality flags, and the MTCNN export against its torch original."""

import importlib.util
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from core.config import Settings
from onnx_models.export_mtcnn import FILES as MTCNN_FILES
from onnx_models.manifest import load_manifest
from services.inference.face_align import ARCFACE_112, FACENET_160, align_face, face_quality
from services.inference.faces import (
    FaceAnalyzer,
    FaceDetector,
    FaceEmbedder,
    MtcnnDetector,
    load_face_detector,
)
from services.inference.models import ModelSet
from services.photos.images import load_oriented
from tests.paths import MODEL_DIR, TESTDATA_DIR

FACES_DIR = TESTDATA_DIR / "faces"
TRUTH: dict[str, str] = json.loads((FACES_DIR / "ground_truth.json").read_text())
HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_FACENET_WEIGHTS = importlib.util.find_spec("facenet_pytorch") is not None


def by_person() -> dict[str, list[str]]:
    people: dict[str, list[str]] = defaultdict(list)
    for name, person in sorted(TRUTH.items()):
        people[person].append(name)
    return people


def photo(name: str) -> Image.Image:
    return load_oriented((FACES_DIR / "images" / name).read_bytes(), max_side=1280)


@pytest.fixture(scope="session")
def mtcnn_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model dir when set-up has exported MTCNN there; otherwise a fresh export in a temp dir."""
    if all((MODEL_DIR / f).is_file() for f in MTCNN_FILES.values()):
        return MODEL_DIR
    if not (HAVE_TORCH and HAVE_FACENET_WEIGHTS):
        pytest.fail(
            "MTCNN ONNX files are missing and cannot be exported here (needs torch + facenet-pytorch); "
            "run `python -m onnx_models.setup`"
        )
    from onnx_models.export_mtcnn import export

    target = tmp_path_factory.mktemp("mtcnn")
    export(target)
    return target


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return ModelSet(Settings(model_dir=MODEL_DIR)).face_embedder


@pytest.fixture(scope="module")
def yunet() -> FaceDetector:
    return load_face_detector(Settings(model_dir=MODEL_DIR), "yunet")


@pytest.fixture(scope="module")
def mtcnn(mtcnn_model_dir: Path) -> FaceDetector:
    return load_face_detector(Settings(model_dir=mtcnn_model_dir), "mtcnn")


@pytest.fixture(scope="module", params=["yunet", "mtcnn"])
def detector(request: pytest.FixtureRequest) -> FaceDetector:
    return request.getfixturevalue(request.param)


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


def test_detectors_agree_on_the_landmarks(yunet: FaceDetector, mtcnn: FaceDetector) -> None:
    """Two independent models: the MTCNN cascade's landmarks land where YuNet's do."""
    images = [photo(names[1]) for names in by_person().values()]
    for a_faces, b_faces in zip(yunet.detect(images), mtcnn.detect(images), strict=True):
        a = max(a_faces, key=lambda f: f.area_px)
        b = max(b_faces, key=lambda f: f.area_px)
        width = a.box_xyxy_px()[2] - a.box_xyxy_px()[0]
        assert np.abs(a.landmarks_px() - b.landmarks_px()).max() < 0.15 * width


def test_no_faces_and_no_images(detector: FaceDetector, embedder: FaceEmbedder) -> None:
    assert detector.detect([]) == []
    assert detector.detect([Image.new("RGB", (320, 240), (128, 128, 128))]) == [[]]
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_alignment_puts_the_eyes_on_the_template(yunet: FaceDetector) -> None:
    image = photo(by_person()[sorted(by_person())[0]][0])
    face = max(yunet.detect([image])[0], key=lambda f: f.area_px)
    for template in (ARCFACE_112, FACENET_160):
        crop, matrix = align_face(image, face.landmarks_px(), template)
        assert crop.size == (template.size, template.size)
        mapped = np.c_[face.landmarks_px(), np.ones(5)] @ np.asarray(matrix).T
        assert np.abs(mapped[:2] - template.points[:2]).max() < 6 * template.size / 112


def test_same_person_is_closer_than_other_people(yunet: FaceDetector, embedder: FaceEmbedder) -> None:
    analyzer = FaceAnalyzer(detector=yunet, embedder=embedder)
    people = by_person()
    chosen = sorted(people)[:3]
    vectors: dict[str, list[np.ndarray]] = {}
    for person in chosen:
        results = analyzer.analyze([photo(n) for n in people[person][:2]])
        vectors[person] = [max(r, key=lambda f: f.detection.area_px).embedding for r in results]
        assert all(r[0].model_name == embedder.model_name for r in results)
    for person in chosen:
        for vector in vectors[person]:
            assert vector.shape == (128,)
            assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
        same = float(vectors[person][0] @ vectors[person][1])
        others = [float(vectors[person][0] @ v) for p in chosen if p != person for v in vectors[p]]
        assert same > max(others), person


def test_batched_embeddings_equal_single_runs(yunet: FaceDetector, embedder: FaceEmbedder) -> None:
    image = photo(sorted(TRUTH)[0])
    face = yunet.detect([image])[0][0]
    crop, _ = align_face(image, face.landmarks_px(), ARCFACE_112)
    flipped = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    together = embedder.embed([crop, np.asarray(flipped)])  # PIL and array inputs alike
    apart = np.concatenate([embedder.embed([crop]), embedder.embed([flipped])])
    assert np.abs(together - apart).max() < 1e-4


def test_small_or_blurred_faces_are_not_recognisable(yunet: FaceDetector, embedder: FaceEmbedder) -> None:
    image = photo(sorted(TRUTH)[1])
    analyzer = FaceAnalyzer(detector=yunet, embedder=embedder)
    sharp = max(analyzer.analyze([image], keep_aligned=True)[0], key=lambda f: f.detection.area_px)
    assert sharp.quality.recognisable and sharp.aligned is not None
    assert sharp.aligned.size == (112, 112)

    blurred = sharp.aligned.filter(ImageFilter.GaussianBlur(4))
    quality = face_quality(sharp.quality.size_px, blurred)
    assert quality.sharpness < sharp.quality.sharpness / 10 and not quality.recognisable

    factor = 12 / sharp.quality.size_px  # the same face at 12 px
    small = image.resize((round(image.width * factor), round(image.height * factor)))
    for face in analyzer.analyze([small])[0]:
        assert not face.quality.recognisable


def test_factory_follows_the_manifest() -> None:
    default = load_manifest().default_for("face_detection")
    settings = Settings(model_dir=MODEL_DIR)
    assert load_face_detector(settings).name == default.name
    with pytest.raises(ValueError):
        load_face_detector(settings, "mobilefacenet_paddlex")


@pytest.mark.skipif(not (HAVE_TORCH and HAVE_FACENET_WEIGHTS), reason="export-time packages not installed")
def test_mtcnn_export_reproduces_torch(mtcnn_model_dir: Path) -> None:
    import torch

    from onnx_models.export_mtcnn import load_torch_networks
    from services.inference.runtime import get_session

    settings = Settings(model_dir=mtcnn_model_dir)
    rng = np.random.default_rng(3)
    shapes = {"pnet": (2, 3, 67, 91), "rnet": (5, 3, 24, 24), "onet": (5, 3, 48, 48)}
    for name, net in load_torch_networks().items():
        x = rng.uniform(-1, 1, size=shapes[name]).astype(np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in net(torch.from_numpy(x))]
        got = get_session(MTCNN_FILES[name], settings).run({"input": x})
        for e, g in zip(expected, got, strict=True):
            assert e.shape == g.shape and np.abs(e - g).max() < 1e-4, name


def test_mtcnn_upscales_small_photos_only(mtcnn: FaceDetector) -> None:
    assert isinstance(mtcnn, MtcnnDetector)
    image = photo(sorted(TRUTH)[2])
    face = max(mtcnn.detect([image])[0], key=lambda f: f.area_px)
    # Coordinates stay relative to the photo given, whatever size the cascade worked at.
    assert face.image_size == image.size
    x1, y1, x2, y2 = face.box_xyxy_px()
    assert 0 <= x1 < x2 <= image.width and 0 <= y1 < y2 <= image.height
