"""Fit a detector's object-tag thresholds on a detection folder, cross-validated, and store them.

Usage: .venv/bin/python bench/fit_tag_thresholds.py DATA_FOLDER [--model NAME] [--write]
       [--folds 5] [--repeats 5] [--seed 0] [--cache DIR] [--min-support 8] [--shrinkage 8]

DATA_FOLDER holds images/ and ground_truth.json (the layout of ../shared/testdata/detection). The
detector (manifest name, default: the objects default) runs once per image; its detections are cached
under --cache, keyed by the model file's sha256. The procedure is services/tagging/thresholds.py's:
a grid over (evidence floor, global threshold) maximising the smaller margin over the SPEC bars, then
per-class thresholds for classes with enough support, shrunk towards the global one. It prints the
in-sample and the cross-validated (k-fold over images, repeated) figures of the global-only and the
per-class variants. The per-class thresholds are kept only when they beat global-only under
cross-validation by FitSettings.min_cv_gain; --write stores the result in
services/tagging/object_thresholds.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import get_settings
from services.inference.objects import ObjectDetector, load_object_detector
from services.tagging.thresholds import (
    THRESHOLDS_PATH,
    FitSettings,
    ObjectThresholds,
    TagCounts,
    cross_validate,
    fit_thresholds,
    objective,
    per_class_gain,
    tag_counts,
)

DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".export-cache" / "tag_thresholds"
Detections = list[list[tuple[str, float]]]


def detect_all(
    detector: ObjectDetector, folder: Path, names: list[str], floor: float, cache: Path
) -> Detections:
    """(class, score) pairs per image at or above `floor`, cached by model file, canvas, folder and floor."""
    digest = hashlib.sha256(detector.onnx.path.read_bytes()).hexdigest()[:16]
    canvas = "rect" if detector.rect else "square"
    key = hashlib.sha256(
        f"{digest}|{canvas}|{folder.resolve()}|{floor}|{','.join(names)}".encode()
    ).hexdigest()[:16]
    path = cache / f"detections-{detector.name}-{key}.json"
    if path.is_file():
        cached: dict[str, list[list[Any]]] = json.loads(path.read_text())
        return [[(str(c), float(s)) for c, s in cached[name]] for name in names]
    started = time.perf_counter()
    found: dict[str, list[tuple[str, float]]] = {}
    for name in names:
        with Image.open(folder / "images" / name) as im:
            image = ImageOps.exif_transpose(im).convert("RGB")
        (detections,) = detector.detect([image], score_threshold=floor)
        found[name] = [(d.class_name, d.score) for d in detections]
    print(f"ran {detector.name} on {len(names)} images in {time.perf_counter() - started:.1f}s")
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found))
    return [found[name] for name in names]


def describe(counts: TagCounts, settings: FitSettings) -> str:
    return (
        f"P {counts.precision:.3f}  R {counts.recall:.3f}  (tp {counts.tp} fp {counts.fp} fn {counts.fn}; "
        f"objective {objective(counts, settings):+.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_folder", type=Path)
    parser.add_argument("--model", default=None, help="manifest name (default: the objects default)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    defaults = FitSettings()
    parser.add_argument(
        "--min-support", type=int, default=defaults.min_support, help="for a sensitivity check"
    )
    parser.add_argument("--shrinkage", type=float, default=defaults.shrinkage, help="for a sensitivity check")
    parser.add_argument("--write", action="store_true", help=f"store the result in {THRESHOLDS_PATH.name}")
    args = parser.parse_args()

    truth_all: dict[str, list[dict[str, Any]]] = json.loads(
        (args.data_folder / "ground_truth.json").read_text()
    )
    names = sorted(name for name in truth_all if (args.data_folder / "images" / name).is_file())
    truths = [{o["class_name"] for o in truth_all[name]} for name in names]
    detector = load_object_detector(get_settings(), args.model)
    settings = FitSettings(min_support=args.min_support, shrinkage=args.shrinkage)
    detections = detect_all(detector, args.data_folder, names, min(settings.floors), args.cache)
    classes = detector.class_names
    print(f"model {detector.name}, {len(names)} images, {sum(len(t) for t in truths)} image-class pairs")

    global_only = fit_thresholds(detections, truths, classes, settings, per_class=False)
    per_class = fit_thresholds(detections, truths, classes, settings, per_class=True)
    cv = cross_validate(detections, truths, classes, settings, args.folds, args.repeats, args.seed)
    use_per_class, gain = per_class_gain(cv, settings)
    chosen = per_class if use_per_class else global_only

    print(f"\nglobal only: floor {global_only.evidence_floor}, threshold {global_only.threshold}")
    print(f"  in-sample        {describe(tag_counts(detections, truths, global_only), settings)}")
    print(f"  cross-validated  {describe(cv.global_only, settings)}")
    shown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(per_class.classes.items())) or "none"
    print(f"per class (support >= {settings.min_support}, shrinkage k={settings.shrinkage}): {shown}")
    print(f"  in-sample        {describe(tag_counts(detections, truths, per_class), settings)}")
    print(f"  cross-validated  {describe(cv.per_class, settings)}")
    print(
        f"  ({args.folds}-fold x {args.repeats} repeats, seed {args.seed}; counts pooled over held-out folds)"
    )
    verdict = "kept" if use_per_class else "not kept"
    verdict += f" (cross-validated objective gain {gain:+.4f}, needed >= {settings.min_cv_gain})"
    print(f"\nper-class thresholds {verdict}; chosen: {json.dumps(chosen.as_json())}")

    if args.write:
        write_entry(args, detector.name, len(names), chosen, cv.global_only, cv.per_class, use_per_class)


def write_entry(
    args: argparse.Namespace,
    model: str,
    n_images: int,
    chosen: ObjectThresholds,
    cv_global: TagCounts,
    cv_per_class: TagCounts,
    use_per_class: bool,
) -> None:
    data: dict[str, Any] = json.loads(THRESHOLDS_PATH.read_text()) if THRESHOLDS_PATH.is_file() else {}
    data.setdefault("note", "")
    data.setdefault("models", {})

    def figures(counts: TagCounts) -> dict[str, float]:
        return {"precision": round(counts.precision, 4), "recall": round(counts.recall, 4)}

    data["models"][model] = {
        **chosen.as_json(),
        "fitted": {
            "data": f"{args.data_folder.name} ({n_images} images)",
            "date": dt.date.today().isoformat(),
            "command": f"bench/fit_tag_thresholds.py {args.data_folder} --model {model} --write",
            "cross_validated": {
                "folds": args.folds,
                "repeats": args.repeats,
                "seed": args.seed,
                "global_only": figures(cv_global),
                "per_class": figures(cv_per_class),
                "per_class_kept": use_per_class,
            },
        },
    }
    THRESHOLDS_PATH.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {THRESHOLDS_PATH}")


if __name__ == "__main__":
    main()
