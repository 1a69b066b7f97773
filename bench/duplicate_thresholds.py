"""Measure the image-embedding cosine that separates near-duplicates from different photos.

Usage: .venv/bin/python bench/duplicate_thresholds.py [TESTDATA_DIR]

Runs the service's image labeler (the model whose embedding `GET /v1/duplicates` and image search
use) over every image of the testdata sets, as the analysis job sees them, and over edited copies
of each (downscaled, recompressed, cropped, brightened, slightly rotated): those pairs are near
duplicates. Every pair of distinct originals is a non-duplicate, except the quality set's shots of
one scene (sharp / defocused / motion-blurred), which are reported apart: they are the "same
moment, pick the best shot" case. Prints percentiles of each distribution and the threshold with
the best F1 over edited copies vs distinct photos.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from core.config import get_settings  # noqa: E402
from services.inference.models import ModelSet  # noqa: E402
from services.photos.images import ANALYSIS_MAX_SIDE, load_oriented  # noqa: E402


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


EDITS = {
    "half size": lambda im: im.resize((max(1, im.width // 2), max(1, im.height // 2))),
    "jpeg q40": lambda im: _jpeg(im, 40),
    "crop 90%": lambda im: im.crop(
        (im.width // 20, im.height // 20, im.width - im.width // 20, im.height - im.height // 20)
    ),
    "brighter 25%": lambda im: ImageEnhance.Brightness(im.convert("RGB")).enhance(1.25),
    "rotated 3deg": lambda im: im.convert("RGB").rotate(3, expand=False),
    "thumbnail 256": lambda im: _jpeg(im.copy().resize((256, max(1, round(256 * im.height / im.width)))), 85),
}


def embed(images: list[Image.Image]) -> np.ndarray:
    labeler = ModelSet(get_settings()).labels
    out = [labeler.predict(images[i : i + 16], top_k=1) for i in range(0, len(images), 16)]
    return np.stack([r.embedding for batch in out for r in batch]).astype(np.float32)


def known_scenes(root: Path, paths: list[Path]) -> dict[int, str]:
    """Photos that show the same scene on purpose: the quality set's blur triples, and the EXIF set's
    one photo stored under each of the 8 orientation tags (identical once the orientation is applied)."""
    scene_of: dict[int, str] = {}
    quality_truth = root / "quality" / "ground_truth.json"
    if quality_truth.is_file():
        truth = json.loads(quality_truth.read_text())
        scene_of.update(
            {i: truth[p.name]["scene"] for i, p in enumerate(paths) if p.parent.parent.name == "quality"}
        )
    manifest = root / "MANIFEST.json"
    if manifest.is_file():
        sources = {
            entry["file"]: entry.get("path", "") for entry in json.loads(manifest.read_text())["files"]
        }
        for i, p in enumerate(paths):
            if "orientation/landscape_" in sources.get(f"{p.parent.parent.name}/images/{p.name}", ""):
                scene_of[i] = "exif orientation set"
    return scene_of


def percentiles(values: np.ndarray) -> str:
    qs = [0, 1, 5, 50, 95, 99, 100]
    return " ".join(f"p{q}={np.percentile(values, q):.3f}" for q in qs)


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT.parent / "shared" / "testdata"
    paths = sorted(p for p in root.glob("*/images/*") if p.is_file())
    originals = [load_oriented(p.read_bytes(), max_side=ANALYSIS_MAX_SIDE) for p in paths]
    base = embed(originals)
    print(f"{len(paths)} photos from {root}")
    positives: list[float] = []
    for name, edit in EDITS.items():
        sims = np.sum(base * embed([edit(im) for im in originals]), axis=1)
        positives.extend(sims.tolist())
        print(f"edited copy, {name:14s}: {percentiles(sims)}")
    scene_of = known_scenes(root, paths)
    sims = base @ base.T
    upper = np.triu_indices(len(paths), k=1)
    same_scene = np.array(
        [
            scene_of.get(i) is not None and scene_of.get(i) == scene_of.get(j)
            for i, j in zip(*upper, strict=True)
        ]
    )
    distinct = sims[upper][~same_scene]
    print(
        f"same scene (quality triples, orientation copies): {np.round(sims[upper][same_scene], 3).tolist()}"
    )
    print(f"distinct photos ({distinct.size} pairs): {percentiles(distinct)}")
    print("closest distinct pairs:")
    order = np.argsort(-sims[upper])
    shown = 0
    for k in order:
        i, j = upper[0][k], upper[1][k]
        if same_scene[k]:
            continue
        print(f"  {sims[i, j]:.3f} {paths[i].parent.parent.name}/{paths[i].name} ~ {paths[j].name}")
        shown += 1
        if shown == 5:
            break
    pos = np.asarray(positives)
    best = max(
        (
            (2 * tp / (2 * tp + fp + fn), t)
            for t in np.arange(0.5, 1.0, 0.005)
            for tp, fp, fn in [((pos >= t).sum(), (distinct >= t).sum(), (pos < t).sum())]
        ),
    )
    print(f"best F1 {best[0]:.4f} at cosine >= {best[1]:.3f}")
    for t in (0.75, 0.78, 0.80, 0.82, 0.85, 0.88, 0.90, 0.92, 0.95):
        scene_pairs = sims[upper][same_scene]
        print(
            f"  at {t:.2f}: edited copies found {np.mean(pos >= t):.3f}, same-scene pairs found "
            f"{np.mean(scene_pairs >= t):.3f}, distinct pairs merged {int((distinct >= t).sum())}"
        )


if __name__ == "__main__":
    main()
