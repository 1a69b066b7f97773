"""Rotation suggestions on real photos turned at random (bare models, no HTTP).

Usage: .venv/bin/python bench/eval_rotation.py FOLDER [FOLDER ...] [--limit N] [--seed S]

Each photo (assumed upright, as in the test sets) is turned by 0/90/180/270 degrees at random and
saved without EXIF; services.quality.rotation must name the clockwise turn that puts it right. Prints
accuracy, how many non-zero suggestions were right (precision), and precision per confidence band.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from core.config import get_settings  # noqa: E402
from services.inference.models import ModelSet  # noqa: E402
from services.photos.images import load_oriented  # noqa: E402
from services.quality.rotation import suggest_rotation  # noqa: E402

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--limit", type=int, default=100, help="photos per folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    models = ModelSet(get_settings())
    rng = random.Random(args.seed)
    results: list[tuple[int, int, float]] = []
    started = time.perf_counter()
    for folder in args.folders:
        images = folder / "images" if (folder / "images").is_dir() else folder
        paths = sorted(p for p in images.iterdir() if p.suffix.lower() in SUFFIXES)[: args.limit]
        for path in paths:
            upright = load_oriented(path.read_bytes(), max_side=1280)
            turn = rng.choice((0, 90, 180, 270))
            shown = upright.rotate(turn, expand=True)  # counter-clockwise: the fix is clockwise `turn`
            detections = models.objects.detect([shown], score_threshold=0.1)[0]
            faces = [f.score for f in models.faces.detector.detect([shown])[0]]
            suggestion = suggest_rotation(shown, detections, faces, models.objects, models.faces.detector)
            results.append((turn, suggestion.rotation, suggestion.confidence))
    elapsed = time.perf_counter() - started
    right = sum(t == s for t, s, _ in results)
    suggested = [(t, s, c) for t, s, c in results if s != 0]
    print(f"photos: {len(results)}, {elapsed / max(1, len(results)):.2f} s each")
    print(f"accuracy (right turn, incl. 'leave it'): {right / len(results):.3f}")
    suggested_right = sum(t == s for t, s, _ in suggested)
    turned = sum(t != 0 for t, _, _ in results)
    print(f"non-zero suggestions: {len(suggested)}, right: {suggested_right / max(1, len(suggested)):.3f}")
    print(f"turned photos found: {suggested_right / max(1, turned):.3f}")
    for low, high in ((0.5, 0.7), (0.7, 0.9), (0.9, 1.01)):
        band = [(t, s) for t, s, c in suggested if low <= c < high]
        if band:
            share = sum(t == s for t, s in band) / len(band)
            print(f"  confidence {low:.1f}-{high:.1f}: {len(band)} suggestions, {share:.3f} right")


if __name__ == "__main__":
    main()
