"""The text-image alignment head on real photos: captions land near their own photos, in the MiniLM space."""

import json

import numpy as np
import pytest
from PIL import Image

from core.config import Settings
from onnx_models.train_text_alignment import caption_ranks, caption_text
from services.inference.alignment import ImageTextAligner, head_version
from services.inference.models import ModelSet
from tests.paths import MODEL_DIR, TESTDATA_DIR

CAPTIONS_DIR = TESTDATA_DIR / "captions"


@pytest.fixture(scope="module")
def aligner() -> ImageTextAligner:
    return ModelSet(Settings(model_dir=MODEL_DIR)).alignment


def test_captions_find_their_own_photo_among_forty(aligner: ImageTextAligner) -> None:
    truth: dict[str, list[str]] = json.loads((CAPTIONS_DIR / "ground_truth.json").read_text())
    names = sorted(truth)[:40]
    photos = aligner.embed([Image.open(CAPTIONS_DIR / "images" / name).convert("RGB") for name in names])
    assert photos.shape == (40, 384)
    assert np.allclose(np.linalg.norm(photos, axis=1), 1.0, atol=1e-5)
    embedder = ModelSet(Settings(model_dir=MODEL_DIR)).text
    captions = embedder.embed([caption_text(c) for name in names for c in truth[name]]).reshape(40, 5, 384)
    ranks = caption_ranks(photos, captions)
    # Chance would put 5 of 40 photos (12.5%) in the top 5; the head gets most captions there.
    assert np.mean(ranks <= 5) >= 0.6, np.mean(ranks <= 5)
    assert np.mean(ranks == 1) >= 0.25, np.mean(ranks == 1)


def test_the_photo_is_squashed_not_cropped_like_the_training_photos(aligner: ImageTextAligner) -> None:
    first = sorted(CAPTIONS_DIR.joinpath("images").iterdir())[0]
    image = Image.open(first).convert("RGB")
    assert image.width != image.height
    squashed = image.resize((224, 224), Image.Resampling.BICUBIC)
    from_squashed = aligner.embed([squashed])[0]
    assert float(from_squashed @ aligner.embed([image])[0]) > 0.999
    cropping = ModelSet(Settings(model_dir=MODEL_DIR)).labels
    cropped = aligner.project(np.stack([cropping.predict([image], top_k=1)[0].embedding]))[0]
    assert float(cropped @ from_squashed) < 0.999


def test_stored_vectors_are_named_after_the_head_file(aligner: ImageTextAligner) -> None:
    version = head_version(MODEL_DIR / aligner.entry.file)
    assert aligner.model_name == f"{aligner.entry.name}@{version}"
    assert len(version) == 12 and int(version, 16) >= 0
    assert aligner.text_model_name == "all_minilm_l6_v2"
