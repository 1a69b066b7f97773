"""Train the rotation head: which of a photo's four turns is the right way up, from EfficientNet-Lite0.

Rotation is self-supervised: any upright photo turned by 90, 180 or 270 degrees is a labelled
example of "not upright". The Flickr8k training photos are upright, so each gives four views (the
labeler's pooled 1280-d embedding of the whole photo squashed to its square, turned as the service
turns it; the manifest's `resize` for the head says which). Squashed rather than the labels' centre
crop, which cuts the sky and the ground off a sideways landscape: on other photos (COCO, camera
photos) the head alone is right for 0.890 of them instead of 0.845, at the same 0.971 on Flickr8k. The head
scores each candidate turn from its view AND the three views a further 90/180/270 degrees on: a
logistic regression of "this candidate is upright" over the four views in that order (L2, balanced
classes). Seeing the other turns lets it judge "upright, and upside down when turned by 180" rather
than each view alone (right turn on the held-apart photos 0.971 against 0.958 for one view alone).
The same weights score every candidate, so the head treats the four turns alike. At serving time the
four scores compete (a softmax), so only the ranking matters: whichever turn looks most upright
wins, and the margin says how sure that is.

Photos held apart by a hash of the file name give the validation accuracy (right turn among four);
the product's own test photos are never read. Features are cached under
<repo>/.export-cache/rotation/ keyed by the model file and the photo list. The fit (lbfgs) is
deterministic for the same features.

    python -m onnx_models.train_rotation_head [--model-dir DIR] [--data DIR] [--photos N]

Output: `rotation_head.onnx`, input `squashed_turn_embeddings` float32 [N,4,1280] (the embeddings of a photo
turned clockwise by 0/90/180/270 degrees), output `turn_scores` float32 [N,4] (one per clockwise
turn that would put it upright: the softmax of them is the head's probabilities).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from onnx_models._export_common import (
    OPSET,
    atomic_output,
    cached_photo_features,
    check_close,
    require_modules,
)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
HEAD_FILE = "rotation_head.onnx"
# Named for the views it reads: a head trained on other views (the centre crop) fails set-up's
# signature check, so set-up retrains it instead of keeping it.
INPUT_NAME = "squashed_turn_embeddings"
OUTPUT_NAME = "turn_scores"
TURNS = (0, 90, 180, 270)
DEFAULT_DATA = Path(
    os.environ.get("SHOEBOX_ROTATION_DATA", REPO_ROOT.parent / "shared" / "testdata" / "flickr8k_train")
)
DEFAULT_PHOTOS = 8000  # all 7,891: the held-out accuracy still grows past 3,000
VALIDATION_SHARE = 0.1
REGULARISATION_C = 1.0
CACHE_DIR = REPO_ROOT / ".export-cache" / "rotation"
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def is_validation(name: str) -> bool:
    digest = hashlib.sha256(f"rotation-split:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < VALIDATION_SHARE * 2**32


def training_photos(data_dir: Path, count: int) -> list[Path]:
    """A seeded sample of the folder's photos (all of them when count covers the folder)."""
    images = data_dir / "images" if (data_dir / "images").is_dir() else data_dir
    paths = sorted(p for p in images.iterdir() if p.suffix.lower() in SUFFIXES)
    random.Random(0).shuffle(paths)
    return paths[:count]


def view_features(paths: list[Path], model_dir: Path, threads: int) -> np.ndarray:
    """[N, 4, 1280] unit embeddings of each photo turned clockwise by 0/90/180/270 (cached)."""
    from core.config import Settings
    from onnx_models.manifest import load_manifest
    from services.inference.labels import ImageLabeler
    from services.inference.rotation import RotationHeadPreprocessing

    manifest = load_manifest()
    entry = manifest.default_for("labels")
    resize = RotationHeadPreprocessing.model_validate(manifest.default_for("rotation").preprocessing).resize
    labeler = ImageLabeler(entry, Settings(model_dir=model_dir, onnx_intra_op_threads=threads))
    model_file = model_dir / entry.file
    key = "\n".join(
        [
            f"rotation-views-v2-{resize}",
            f"{model_file.name}:{model_file.stat().st_size}",
            *(p.name for p in paths),
        ]
    )
    cached = CACHE_DIR / f"views-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npy"
    return cached_photo_features(
        cached,
        paths,
        lambda images: labeler.embed_turns(images, TURNS, resize),
        "rotation features",
        batch=16,
    )


def candidate_views(views: np.ndarray) -> np.ndarray:
    """[N, 4, 4*D] from [N, 4, D]: for candidate turn i, the views i, i+1, i+2, i+3 (mod 4) side by side,
    i.e. that view followed by what it becomes turned a further 90, 180 and 270 degrees clockwise."""
    return np.concatenate([np.roll(views, -step, axis=1) for step in range(views.shape[1])], axis=-1)


def fit_head(views: np.ndarray) -> np.ndarray:
    """Weights [4*D] of the upright score of a candidate (candidate_views), from [N, 4, D] views of
    upright photos (view 0 is upright). The bias is left out: it is the same for the four candidates."""
    from sklearn.linear_model import LogisticRegression

    candidates = candidate_views(views)
    n, turns, dim = candidates.shape
    labels = np.tile((np.arange(turns) == 0).astype(int), n)
    model = LogisticRegression(C=REGULARISATION_C, class_weight="balanced", max_iter=5000)
    model.fit(candidates.reshape(n * turns, dim), labels)
    weights: np.ndarray = model.coef_[0].astype(np.float32)
    return weights


def turn_scores(views: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[N, 4] scores of each clockwise turn (of the photo the views were taken of) being the fix."""
    scores: np.ndarray = candidate_views(views) @ weights
    return scores


def turn_accuracy(views: np.ndarray, weights: np.ndarray) -> float:
    """Share of upright photos whose upright view (turn 0) scores highest of their four."""
    return float((turn_scores(views, weights).argmax(axis=1) == 0).mean())


def score_matrix(weights: np.ndarray, turns: int) -> np.ndarray:
    """[turns*D, turns] matrix M with flat(views) @ M == turn_scores(views): column i holds the weight
    block `step` at the rows of view (i + step) mod turns."""
    dim = weights.shape[0] // turns
    matrix = np.zeros((turns * dim, turns), dtype=np.float32)
    for candidate in range(turns):
        for step in range(turns):
            view = (candidate + step) % turns
            matrix[view * dim : (view + 1) * dim, candidate] = weights[step * dim : (step + 1) * dim]
    return matrix


def export_head(weights: np.ndarray, path: Path, sample: np.ndarray) -> float:
    """Write the head as ONNX (Flatten + MatMul, dynamic batch); returns max |onnx - numpy| on `sample`
    ([N, 4, D] views)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    turns = len(TURNS)
    dim = weights.shape[0] // turns
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", [INPUT_NAME], ["views"], axis=1),
            helper.make_node("MatMul", ["views", "weights"], [OUTPUT_NAME]),
        ],
        "rotation_head",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", turns, dim])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", turns])],
        [numpy_helper.from_array(score_matrix(weights, turns), "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="shoebox")
    onnx.checker.check_model(model)
    with atomic_output(path) as tmp:
        onnx.save(model, str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: sample})
        return check_close(OUTPUT_NAME, got, turn_scores(sample, weights), atol=1e-4)


def train_and_export(
    model_dir: Path, data_dir: Path = DEFAULT_DATA, photos: int = DEFAULT_PHOTOS, threads: int = 0
) -> Path:
    require_modules("onnx", "onnxruntime", "sklearn")
    model_dir = Path(model_dir)
    paths = training_photos(Path(data_dir), photos)
    views = view_features(paths, model_dir, threads)
    held = np.asarray([is_validation(p.name) for p in paths])
    weights = fit_head(views[~held])
    log.info(
        "rotation head: right turn among four on %d held-apart photos %.3f (training photos %d: %.3f)",
        int(held.sum()),
        turn_accuracy(views[held], weights),
        int((~held).sum()),
        turn_accuracy(views[~held], weights),
    )
    # The served head learns from every photo; the held-apart figure above is the estimate.
    weights = fit_head(views)
    path = model_dir / HEAD_FILE
    diff = export_head(weights, path, views[:16])
    log.info("wrote %s (max |onnx - numpy| %.2g)", path, diff)
    return path


def export(model_dir: Path) -> list[Path]:
    """Set-up entry point (onnx_models.setup): train and write the head into model_dir."""
    return [train_and_export(model_dir)]


def main(argv: Sequence[str] | None = None) -> int:
    from core.config import get_settings

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="default: SHOEBOX_MODEL_DIR / settings")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of upright photos")
    parser.add_argument("--photos", type=int, default=DEFAULT_PHOTOS, help="how many of them to learn from")
    parser.add_argument("--threads", type=int, default=0, help="ONNX threads for the features (0: half)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    train_and_export(args.model_dir or get_settings().model_dir, args.data, args.photos, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
