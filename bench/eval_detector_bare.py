"""Bare object-detector evaluation: tag-set precision/recall and mAP50 on a detection folder.

Usage: python bench/eval_detector_bare.py DATA_FOLDER [--model NAME] [--onnx FILE] [--nms-iou 0.6 0.7]
       [--min-area 0]

DATA_FOLDER holds images/*.jpg and ground_truth.json ({file: [{class_name, class_id,
bbox_xyxy_normalised}]}). Tag sets score each image as the set of classes present: a predicted class
is a true positive when the ground truth has at least one object of it. mAP50 is COCO-style
101-point interpolated AP at IoU 0.5 per class (classes with ground truth), from detections kept at
conf 0.001. This runs the detector alone, not the HTTP service; it helps choose thresholds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings, get_settings
from services.inference.objects import Detection, ObjectDetector, load_object_detector
from services.tagging.rules import derive_tags, load_rules, object_thresholds_for
from services.tagging.thresholds import ObjectThresholds, load_object_thresholds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _detection_metrics import Box
from _detection_metrics import map50 as box_map50

GroundTruth = dict[str, list[dict[str, Any]]]
TAG_THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
MAP_CONF = 0.001


def map50(preds: dict[str, list[Detection]], gt: GroundTruth) -> tuple[float, dict[str, float]]:
    boxes = {
        image: [Box(d.class_name, d.score, (x, y, x + w, y + h)) for d in found for x, y, w, h in [d.box]]
        for image, found in preds.items()
    }
    return box_map50(boxes, gt)


def tag_prf(
    preds: dict[str, list[Detection]],
    gt: GroundTruth,
    threshold: float,
    min_area: float = 0.0,
) -> tuple[float, float, int, int, int]:
    """Micro precision/recall over (image, class) pairs."""
    tp = fp = fn = 0
    for img, objs in gt.items():
        truth = {o["class_name"] for o in objs}
        got = {d.class_name for d in preds[img] if d.score >= threshold and d.box[2] * d.box[3] >= min_area}
        tp += len(truth & got)
        fp += len(got - truth)
        fn += len(truth - got)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, tp, fp, fn


def rules_prf(
    preds: dict[str, list[Detection]], gt: GroundTruth, thresholds: ObjectThresholds
) -> tuple[float, float]:
    """Object tags as the service derives them (tagging rules + the model's fitted thresholds)."""
    tp = fp = fn = 0
    for img, objs in gt.items():
        truth = {o["class_name"] for o in objs}
        found = derive_tags(preds[img], [], object_thresholds=thresholds)
        got = {t.name for t in found if t.kind == "object"}
        tp += len(truth & got)
        fp += len(got - truth)
        fn += len(truth - got)
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_folder", type=Path)
    parser.add_argument("--model", default=None, help="manifest name (default: the objects default)")
    parser.add_argument("--nms-iou", type=float, nargs="*", default=None, help="NMS IoU(s) to try")
    parser.add_argument("--min-area", type=float, default=0.0, help="min normalised box area for tags")
    parser.add_argument("--per-class", action="store_true", help="print per-class AP50")
    parser.add_argument(
        "--onnx", type=Path, default=None, help="an ONNX file run with --model's pre/post-processing"
    )
    args = parser.parse_args()

    gt: GroundTruth = json.loads((args.data_folder / "ground_truth.json").read_text())
    detector = load_object_detector(get_settings(), args.model)
    if args.onnx:  # e.g. the QDQ experiment of onnx_models/rebuild_yolo26.py, with yolo26n_fp32's entry
        settings = Settings(model_dir=args.onnx.parent)
        detector = ObjectDetector(detector.entry.model_copy(update={"file": args.onnx.name}), settings)
    images: dict[str, Image.Image] = {}
    for name in sorted(gt):
        with Image.open(args.data_folder / "images" / name) as im:
            images[name] = ImageOps.exif_transpose(im).convert("RGB")
    print(f"model {detector.name} ({detector.family}), {len(images)} images, "
          f"{sum(len(v) for v in gt.values())} objects")  # fmt: skip
    for iou in args.nms_iou or [detector.nms_iou]:
        detector.detect([next(iter(images.values()))])  # warm-up, not timed
        t0 = time.perf_counter()
        preds: dict[str, list[Detection]] = {}
        for name, photo in images.items():
            # Detections kept at a low conf feed mAP; tag sets filter the same list (greedy NMS makes
            # filtering after NMS identical to thresholding before it).
            preds[name] = detector.detect([photo], score_threshold=MAP_CONF, nms_iou=iou)[0]
        per_image_ms = (time.perf_counter() - t0) / len(images) * 1000
        m, aps = map50(preds, gt)
        print(f"\nnms_iou={iou}  mAP50={m:.3f}  ({per_image_ms:.0f} ms/image incl. preprocessing)")
        print("  thr    precision  recall   tp   fp   fn")
        for thr in TAG_THRESHOLDS:
            p, r, tp, fp, fn = tag_prf(preds, gt, thr, args.min_area)
            print(f"  {thr:.2f}   {p:.3f}      {r:.3f}   {tp:4d} {fp:4d} {fn:4d}")
        fitted = load_object_thresholds(detector.name)
        thresholds = object_thresholds_for(load_rules(), fitted)
        p, r = rules_prf(preds, gt, thresholds)
        source = "object_thresholds.json" if fitted else "tagging_rules.json"
        per_class = f", {len(thresholds.classes)} per-class" if thresholds.classes else ""
        print(
            f"  service tags (noisy-OR of detections >= {thresholds.evidence_floor}, tag at >= "
            f"{thresholds.threshold}{per_class}; {source}): precision {p:.3f} recall {r:.3f}"
        )
        if args.per_class:
            for cls, ap in sorted(aps.items(), key=lambda kv: kv[1]):
                print(f"    {cls:16s} {ap:.3f}")


if __name__ == "__main__":
    main()
