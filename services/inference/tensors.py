"""Array helpers every model family and domain shares: NMS, IoU, L2 normalisation, sharpness."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

# Shifts each group's boxes apart so one NMS call never suppresses boxes of different groups.
_GROUP_OFFSET = 8192.0


def nms(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, mode: Literal["union", "min"] = "union"
) -> np.ndarray:
    """Greedy non-maximum suppression on [N, 4] xyxy boxes; returns kept indices, best score first.

    mode "min" divides the overlap by the smaller box (MTCNN's last stage: drops a box inside another).
    Greedy suppression is sequential by nature; each step is one vectorised overlap against the rest.
    """
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        denom = np.minimum(areas[i], areas[rest]) if mode == "min" else areas[i] + areas[rest] - inter
        overlap = inter / np.maximum(denom, 1e-9)
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def grouped_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    iou_threshold: float,
    mode: Literal["union", "min"] = "union",
) -> np.ndarray:
    """NMS within each group (class, or image of a batch) in one pass."""
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    offset = max(_GROUP_OFFSET, float(np.abs(boxes).max()) + 1.0)
    shifted = boxes + (groups.astype(np.float64) * offset)[:, None]
    return nms(shifted, scores, iou_threshold, mode)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x, y, w, h] boxes (any common unit)."""
    inter_w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a 2-D grey array: high when edges are crisp."""
    g = np.asarray(grey, dtype=np.float32)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var(dtype=np.float64))
