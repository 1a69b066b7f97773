"""The rotation head on real photos it never saw: which of four turns is the right way up."""

import numpy as np
import pytest
from PIL import Image

from core.config import Settings
from services.inference.models import ModelSet
from services.inference.rotation import TURNS
from tests.paths import MODEL_DIR, TESTDATA_DIR

CAPTIONS_DIR = TESTDATA_DIR / "captions"


@pytest.fixture(scope="module")
def models() -> ModelSet:
    return ModelSet(Settings(model_dir=MODEL_DIR))


def test_turning_the_tensor_is_turning_the_photo(models: ModelSet) -> None:
    photo = Image.open(sorted((CAPTIONS_DIR / "images").iterdir())[0]).convert("RGB")
    turned = models.labels.embed_turns([photo], (90, 270))[0]
    for view, turn in zip(turned, (90, 270), strict=True):
        # Image.rotate turns counter-clockwise: -turn is the clockwise turn.
        direct = models.labels.predict([photo.rotate(-turn, expand=True)])[0].embedding
        assert float(np.dot(view, direct)) > 0.97


def test_squashed_views_are_the_alignment_heads_and_turn_with_the_photo(models: ModelSet) -> None:
    photo = Image.open(sorted((CAPTIONS_DIR / "images").iterdir())[1]).convert("RGB")
    assert models.rotation.reads_upright_view_of(models.alignment.image_model)
    assert not models.rotation.reads_upright_view_of(models.labels)  # the labels' centre crop
    views = models.labels.embed_turns([photo], TURNS, models.rotation.resize)[0]
    for view, turn in zip(views, TURNS, strict=True):
        direct = models.alignment.image_embeddings([photo.rotate(-turn, expand=True)])[0]
        assert float(np.dot(view, direct)) > 0.97


def test_the_upright_turn_wins_for_most_photos(models: ModelSet) -> None:
    photos = [Image.open(p).convert("RGB") for p in sorted((CAPTIONS_DIR / "images").iterdir())[:12]]
    right = 0
    for turn in TURNS:
        # Shown turned counter-clockwise by `turn`, so the fix is a clockwise `turn`.
        shown = [photo.rotate(turn, expand=True) for photo in photos]
        # The analysis hands the head the squashed embeddings it made for the sentence vectors.
        probabilities = models.rotation.turn_probabilities(shown, models.alignment.image_embeddings(shown))
        assert np.allclose(probabilities, models.rotation.turn_probabilities(shown), atol=1e-5)
        assert probabilities.shape == (len(photos), 4)
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        right += int((probabilities.argmax(axis=1) == TURNS.index(turn)).sum())
    # Chance is a quarter; the bench (bench/reports/rotation.md) measures the head on 250+ photos.
    assert right / (4 * len(photos)) >= 0.75, right
