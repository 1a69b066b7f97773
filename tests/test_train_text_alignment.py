"""The alignment trainer on real Flickr8k photos: seeded and deterministic, and it learns."""

from dataclasses import replace

import numpy as np
import pytest

from onnx_models.train_text_alignment import (
    DEFAULT_DATA,
    Dataset,
    HeadConfig,
    caption_text,
    image_features,
    is_validation,
    load_captions,
    text_features,
    train_head,
)
from tests.paths import MODEL_DIR

pytest.importorskip("torch", reason="the trainer is an export-time tool (pip install -e '.[export]')")


@pytest.fixture(scope="module")
def small_dataset() -> Dataset:
    """400 training photos and 100 held apart, features from the real encoders."""
    captions = load_captions(DEFAULT_DATA)
    names = sorted(captions)
    train = [n for n in names if not is_validation(n)][:400]
    held = [n for n in names if is_validation(n)][:100]
    chosen = train + held
    texts = [caption_text(c) for name in chosen for c in (captions[name] * 5)[:5]]
    return Dataset(
        names=chosen,
        images=image_features(chosen, DEFAULT_DATA / "images", MODEL_DIR, threads=1),
        captions=text_features(texts, MODEL_DIR, threads=1).reshape(len(chosen), 5, -1),
        validation=np.array([name in set(held) for name in chosen]),
    )


def test_training_is_deterministic_and_beats_chance(small_dataset: Dataset) -> None:
    config = replace(HeadConfig(), max_epochs=3, batch_size=128, patience=3)
    first_head, first = train_head(small_dataset, config)
    second_head, second = train_head(small_dataset, config)
    for (name, a), (_, b) in zip(
        first_head.state_dict().items(), second_head.state_dict().items(), strict=True
    ):
        assert np.array_equal(a.numpy(), b.numpy()), name
    assert [e.train_loss for e in first.epochs] == [e.train_loss for e in second.epochs]
    best = first.epochs[first.best_epoch - 1].gallery_recall
    # 100 held-apart photos: chance puts 10% of captions in the top 10 and 1% first.
    assert best["r@10"] >= 0.4 and best["r@1"] >= 0.08, best


def test_the_split_is_stable_and_about_an_eighth() -> None:
    names = sorted(load_captions(DEFAULT_DATA))
    held = [n for n in names if is_validation(n)]
    assert 0.10 <= len(held) / len(names) <= 0.14
    assert held == [n for n in names if is_validation(n)]
