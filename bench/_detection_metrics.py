"""Detection metrics shared by the bench scripts: IoU, COCO 101-point AP, mAP50 over classes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Box:
    class_name: str
    score: float
    xyxy: tuple[float, float, float, float]


def iou_one_to_many(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / (area + areas - inter + 1e-12)


def ap_101(tp: np.ndarray, n_gt: int) -> float:
    """COCO 101-point interpolated AP from detections sorted by descending score."""
    if tp.size == 0:
        return 0.0
    ctp = np.cumsum(tp)
    recall = ctp / n_gt
    precision = ctp / np.arange(1, tp.size + 1)
    # Monotone precision envelope, sampled at recall 0, 0.01, ..., 1 (0 beyond the reached recall).
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    sampled = np.where(idx < envelope.size, envelope[np.minimum(idx, envelope.size - 1)], 0.0)
    return float(sampled.mean())


def map50(preds: dict[str, list[Box]], gt: dict[str, list[dict[str, Any]]]) -> tuple[float, dict[str, float]]:
    """Per-class AP at IoU 0.5; detections matched greedily, highest score first, one GT box each."""
    gt_boxes: dict[tuple[str, str], np.ndarray] = {}
    n_gt: dict[str, int] = defaultdict(int)
    for image, objects in gt.items():
        by_class: dict[str, list[list[float]]] = defaultdict(list)
        for obj in objects:
            by_class[obj["class_name"]].append(obj["bbox_xyxy_normalised"])
        for cls, boxes in by_class.items():
            gt_boxes[(image, cls)] = np.asarray(boxes, dtype=np.float64)
            n_gt[cls] += len(boxes)
    ranked_by_class: dict[str, list[tuple[float, str, np.ndarray]]] = defaultdict(list)
    for image, boxes in preds.items():
        for b in boxes:
            ranked_by_class[b.class_name].append((b.score, image, np.asarray(b.xyxy)))
    aps: dict[str, float] = {}
    for cls in sorted(n_gt):
        ranked = sorted(ranked_by_class.get(cls, []), key=lambda t: -t[0])
        taken: dict[str, np.ndarray] = {}
        tp = np.zeros(len(ranked))
        for k, (_, image, box) in enumerate(ranked):
            truth = gt_boxes.get((image, cls))
            if truth is None:
                continue
            used = taken.setdefault(image, np.zeros(len(truth), dtype=bool))
            ious = np.where(used, -1.0, iou_one_to_many(box, truth))
            best = int(np.argmax(ious))
            if ious[best] >= 0.5:
                used[best] = True
                tp[k] = 1
        aps[cls] = ap_101(tp, n_gt[cls])
    return (float(np.mean(list(aps.values()))) if aps else float("nan")), aps
