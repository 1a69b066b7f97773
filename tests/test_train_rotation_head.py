"""The rotation head's trainer: every turn scored alike, the ONNX file equal to the numpy head, and it
learns which way up real Flickr8k photos are from a few of them."""

from pathlib import Path

import numpy as np
import pytest

from onnx_models.train_rotation_head import (
    DEFAULT_DATA,
    INPUT_NAME,
    OUTPUT_NAME,
    TURNS,
    export_head,
    fit_head,
    is_validation,
    training_photos,
    turn_accuracy,
    turn_scores,
    view_features,
)
from tests.paths import MODEL_DIR

pytest.importorskip("sklearn", reason="the trainer is an export-time tool (pip install -e '.[export]')")


def unit_views(rng: np.random.Generator, photos: int, dim: int) -> np.ndarray:
    views = rng.normal(size=(photos, len(TURNS), dim)).astype(np.float32)
    unit: np.ndarray = views / np.linalg.norm(views, axis=-1, keepdims=True)
    return unit


def test_turning_the_photo_turns_the_scores(tmp_path: Path) -> None:
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    # Upright views share a direction, so the fit has something to find.
    views = unit_views(rng, 60, 16)
    views[:, 0] += 0.5
    weights = fit_head(views)
    scores = turn_scores(views, weights)
    # The photo turned 90 degrees further clockwise: its view i is the old view i + 1, so the turn
    # that fixes it is one step later and every score moves one place.
    turned = np.roll(views, -1, axis=1)
    assert np.allclose(turn_scores(turned, weights), np.roll(scores, -1, axis=1), atol=1e-5)
    assert turn_accuracy(views, weights) > 0.9
    path = tmp_path / "head.onnx"
    assert export_head(weights, path, views[:8]) < 1e-4
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: turned})
    assert np.allclose(got, np.roll(scores, -1, axis=1), atol=1e-4)


def test_fit_is_deterministic_and_learns_on_real_photos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx_models.train_rotation_head as trainer

    monkeypatch.setattr(trainer, "CACHE_DIR", tmp_path)
    paths = training_photos(DEFAULT_DATA, 160)
    views = view_features(paths, MODEL_DIR, threads=1)
    held = np.asarray([is_validation(p.name) or i % 4 == 0 for i, p in enumerate(paths)])
    first, second = fit_head(views[~held]), fit_head(views[~held])
    assert np.array_equal(first, second)
    # Chance is a quarter; the full set (7,891 photos) reaches 0.97 on its held-apart part.
    assert turn_accuracy(views[held], first) >= 0.7, turn_accuracy(views[held], first)
