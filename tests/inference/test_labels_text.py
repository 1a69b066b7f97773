"""ImageNet labels + image embeddings (EfficientNet-Lite0) and text embeddings (MiniLM), real models."""

import json

import numpy as np
import pytest
from PIL import Image

from core.config import Settings
from services.inference.labels import ImageLabeler
from services.inference.models import ModelSet
from services.inference.text import TextEmbedder
from tests.paths import MODEL_DIR, TESTDATA_DIR

DETECTION_DIR = TESTDATA_DIR / "detection"


def photo_where(cls: str) -> Image.Image:
    """The detection photo in which `cls` covers the largest share of the frame."""
    truth: dict[str, list[dict]] = json.loads((DETECTION_DIR / "ground_truth.json").read_text())

    def area(objects: list[dict]) -> float:
        return sum(
            (b[2] - b[0]) * (b[3] - b[1])
            for b in (o["bbox_xyxy_normalised"] for o in objects if o["class_name"] == cls)
        )

    name = max(truth, key=lambda key: area(truth[key]))
    assert area(truth[name]) > 0, f"no {cls} in the detection set"
    with Image.open(DETECTION_DIR / "images" / name) as image:
        return image.convert("RGB")


@pytest.fixture(scope="module")
def labeler() -> ImageLabeler:
    return ModelSet(Settings(model_dir=MODEL_DIR)).labels


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return ModelSet(Settings(model_dir=MODEL_DIR)).text


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return {cls: photo_where(cls) for cls in ("bus", "cat", "pizza")}


def names(result_labels: list[tuple[str, float]]) -> list[str]:
    return [name.lower() for name, _ in result_labels]


def test_bus_photo_gets_a_bus_label(labeler: ImageLabeler, photos: dict[str, Image.Image]) -> None:
    (result,) = labeler.predict([photos["bus"]], top_k=5)
    assert any("bus" in n or "cab" in n for n in names(result.labels)), result.labels


def test_cat_photo_gets_a_cat_label(labeler: ImageLabeler, photos: dict[str, Image.Image]) -> None:
    (result,) = labeler.predict([photos["cat"]], top_k=5)
    assert any("cat" in n or "tabby" in n for n in names(result.labels)), result.labels


def test_labels_are_sorted_probabilities(labeler: ImageLabeler, photos: dict[str, Image.Image]) -> None:
    (result,) = labeler.predict([photos["pizza"]], top_k=7)
    probs = [p for _, p in result.labels]
    assert len(probs) == 7
    assert probs == sorted(probs, reverse=True)
    assert 0.0 < sum(probs) <= 1.0 + 1e-5
    assert len(set(names(result.labels))) == 7


def test_embedding_is_unit_norm_and_model_sized(
    labeler: ImageLabeler, photos: dict[str, Image.Image]
) -> None:
    (result,) = labeler.predict([photos["bus"]])
    assert labeler.model_name == "efficientnet_lite0"
    assert result.embedding.shape == (1280,)
    assert result.embedding.dtype == np.float32
    assert abs(float(np.linalg.norm(result.embedding)) - 1.0) < 1e-5


def test_batch_equals_singles(labeler: ImageLabeler, photos: dict[str, Image.Image]) -> None:
    images = [photos["bus"], photos["cat"], photos["pizza"]]
    batch = labeler.predict(images)
    singles = [labeler.predict([image])[0] for image in images]
    for b, s in zip(batch, singles, strict=True):
        assert names(b.labels) == names(s.labels)
        assert np.allclose([p for _, p in b.labels], [p for _, p in s.labels], atol=1e-4)
        assert np.allclose(b.embedding, s.embedding, atol=1e-4)
    # Different photos, different embeddings.
    assert float(batch[0].embedding @ batch[1].embedding) < 0.95


def test_any_image_mode_is_accepted(labeler: ImageLabeler, photos: dict[str, Image.Image]) -> None:
    grey = photos["cat"].convert("L")
    rgba = photos["cat"].convert("RGBA")
    tiny = photos["cat"].resize((40, 30))
    results = labeler.predict([grey, rgba, tiny])
    assert len(results) == 3
    assert all(r.embedding.shape == (1280,) for r in results)
    assert labeler.predict([]) == []


def test_text_neighbours_make_sense(embedder: TextEmbedder) -> None:
    puppy, dog, car, automobile, banana = embedder.embed(["puppy", "dog", "car", "automobile", "banana"])
    assert puppy @ dog > puppy @ car
    assert automobile @ car > automobile @ banana


def test_text_embeddings_are_unit_vectors(embedder: TextEmbedder) -> None:
    vectors = embedder.embed(["dog on a bench", "Paris 2014", ""])
    assert embedder.model_name == "all_minilm_l6_v2"
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_text_padding_does_not_change_embeddings(embedder: TextEmbedder) -> None:
    texts = ["tennis", "a child in a pink dress climbing the stairs to a wooden playhouse"]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([text])[0] for text in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_long_text_is_truncated_not_rejected(embedder: TextEmbedder) -> None:
    (vector,) = embedder.embed(["dog " * 2000])
    assert vector.shape == (384,) and np.isfinite(vector).all()
