"""COCO object detection (Ultralytics YOLOv8/YOLO11 and end-to-end YOLO26 exports, YOLOX) on ONNX Runtime.

Everything model-specific comes from the manifest entry (input size, channel order, scale, letterbox
mode, thresholds, strides), so a new model of a known family is a manifest entry, not code.
Families: "yolov8" (raw [4 + nc, anchors] head, NMS here), "yolo26" (end-to-end head: at most 300
de-duplicated [x1, y1, x2, y2, score, class] rows, no NMS) and "yolox" (raw grid head, NMS here).
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from core.config import Settings
from onnx_models.manifest import ModelEntry, load_manifest
from services.inference.base import InferenceModel, Preprocessing
from services.inference.runtime import OnnxSession
from services.inference.tensors import grouped_nms

log = logging.getLogger(__name__)

# The 80 COCO detection classes in YOLO order (0 person ... 79 toothbrush); used when the ONNX file
# carries no `names` metadata (YOLOX exports, for one).
COCO80: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

SUPPORTED_FAMILIES = ("yolov8", "yolo26", "yolox")
# Families whose ONNX head already removes duplicates (Ultralytics end2end=True): no NMS step.
END_TO_END_FAMILIES = ("yolo26",)
# Ultralytics' own caps: boxes entering NMS and detections kept per image.
_MAX_NMS_CANDIDATES = 30000
_MAX_DETECTIONS = 300


@dataclass(frozen=True, slots=True)
class Detection:
    class_name: str
    class_id: int
    score: float
    # [x, y, w, h], normalised to 0..1 of the image passed to detect() (orientation-corrected).
    box: tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class _Letterbox:
    """How one image was placed on the model canvas, so boxes can be mapped back."""

    ratio: float
    pad_x: float
    pad_y: float
    width: int
    height: int


def _names_from_metadata(session: OnnxSession) -> list[str] | None:
    """Ultralytics writes `names` as a Python dict literal ("{0: 'person', ...}") into the metadata."""
    raw = session.session.get_modelmeta().custom_metadata_map.get("names")
    if not raw:
        return None
    try:
        parsed = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        log.warning("ignoring unparsable `names` metadata in %s", session.path.name)
        return None
    if isinstance(parsed, dict):
        return [str(parsed[k]) for k in sorted(parsed)]
    if isinstance(parsed, list | tuple):
        return [str(n) for n in parsed]
    return None


class ObjectsPreprocessing(Preprocessing):
    input_size: int | tuple[int, int] = 640
    channels: Literal["RGB", "BGR"] = "RGB"
    scale: float = 1.0
    mean: float | tuple[float, float, float] = 0.0
    std: float | tuple[float, float, float] = 1.0
    # Ultralytics centres the image on the canvas; YOLOX pastes it at the top-left.
    letterbox: Literal["center", "top_left"] | None = None
    # Rectangular letterbox (Ultralytics' `rect`): pad only up to a multiple of the largest stride, so a
    # 4:3 photo is 640 x 480, not 640 x 640. Used only when the graph's height and width are free.
    rect: bool = False
    pad_value: int = 114
    # Detections kept (stored) by analysis; tag thresholds are applied later, in tagging.
    score_threshold: float = 0.25
    nms_iou: float = 0.6
    strides: tuple[int, ...] = (8, 16, 32)
    classes: Literal["coco80"] | list[str] = "coco80"


class ObjectDetector(InferenceModel):
    """One detector model; `detect` returns per-image detections with normalised [x, y, w, h] boxes."""

    role = "objects"
    preprocessing_type = ObjectsPreprocessing

    def __init__(self, entry: ModelEntry, settings: Settings) -> None:
        super().__init__(entry, settings)
        if entry.family not in SUPPORTED_FAMILIES:
            raise ValueError(f"unsupported object-detector family {entry.family!r} ({entry.name})")
        self.name = entry.name
        self.family = entry.family
        self.onnx: OnnxSession = self.session()
        pre = ObjectsPreprocessing.model_validate(entry.preprocessing)

        size = pre.input_size
        self.input_h, self.input_w = (size, size) if isinstance(size, int) else size
        self.channels = pre.channels
        self.scale = pre.scale
        self.mean = np.asarray(pre.mean, dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(pre.std, dtype=np.float32).reshape(-1, 1, 1)
        self.letterbox_mode = pre.letterbox or ("top_left" if self.family == "yolox" else "center")
        self.pad_value = pre.pad_value
        self.score_threshold = pre.score_threshold
        self.nms_iou = pre.nms_iou
        self.strides = list(pre.strides)
        self.batch_size = max(1, settings.analysis_batch_size)

        inputs = self.onnx.session.get_inputs()
        self.input_name = inputs[0].name
        spatial = inputs[0].shape[2:]
        self.rect = pre.rect and not all(isinstance(dim, int) for dim in spatial)
        batch_dim = inputs[0].shape[0] if inputs[0].shape else None
        # A fixed batch dimension (the int8 v8 export has 1) means one image per run.
        self.fixed_batch: int | None = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None

        names = _names_from_metadata(self.onnx)
        if names is None:
            names = list(COCO80) if pre.classes == "coco80" else [str(c) for c in pre.classes]
        self.class_names: list[str] = names
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def warm_up(self) -> None:
        self.detect([Image.new("RGB", (64, 64))])

    # ---- preprocessing -------------------------------------------------------------------------
    def _letterbox(self, image: Image.Image) -> tuple[np.ndarray, _Letterbox]:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        w, h = rgb.size
        ratio = min(self.input_w / w, self.input_h / h)
        new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
        resized = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR) if (new_w, new_h) != (w, h) else rgb
        canvas_w, canvas_h = self.input_w, self.input_h
        if self.rect:
            step = max(self.strides)
            canvas_w, canvas_h = (
                min(canvas_w, -(-new_w // step) * step),
                min(canvas_h, -(-new_h // step) * step),
            )
        if self.letterbox_mode == "center":
            # Same rounding as Ultralytics' LetterBox so the padding matches its exports.
            dw, dh = (canvas_w - new_w) / 2, (canvas_h - new_h) / 2
            left, top = round(dw - 0.1), round(dh - 0.1)
        else:
            left, top = 0, 0
        canvas = np.full((canvas_h, canvas_w, 3), self.pad_value, dtype=np.uint8)
        canvas[top : top + new_h, left : left + new_w] = np.asarray(resized, dtype=np.uint8)
        if self.channels == "BGR":
            canvas = canvas[:, :, ::-1]
        chw = canvas.transpose(2, 0, 1).astype(np.float32)
        chw = (chw * self.scale - self.mean) / self.std
        return chw, _Letterbox(ratio, float(left), float(top), w, h)

    # ---- decoding ------------------------------------------------------------------------------
    def _yolox_grid(self) -> tuple[np.ndarray, np.ndarray]:
        if self._grid is None:
            grids, strides = [], []
            for s in self.strides:
                gh, gw = self.input_h // s, self.input_w // s
                ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
                grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
                strides.append(np.full((gh * gw, 1), s))
            self._grid = (
                np.concatenate(grids).astype(np.float32),
                np.concatenate(strides).astype(np.float32),
            )
        return self._grid

    def _end_to_end(
        self, raw: np.ndarray, score_threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """YOLO26 rows [x1, y1, x2, y2, score, class_id] (canvas pixels, best first) -> kept arrays."""
        if raw.ndim != 2 or raw.shape[1] != 6:
            raise ValueError(f"{self.name}: end-to-end output rows must be 6 wide, got {raw.shape}")
        kept = raw[raw[:, 4] >= score_threshold]
        kept = kept[np.argsort(-kept[:, 4], kind="stable")][:_MAX_DETECTIONS]
        class_ids = kept[:, 5].astype(np.int64)
        if class_ids.size and (class_ids.min() < 0 or class_ids.max() >= len(self.class_names)):
            raise ValueError(f"{self.name}: class id out of range 0..{len(self.class_names) - 1}")
        return kept[:, :4], kept[:, 4], class_ids

    def _candidates(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One image's raw output -> (cx, cy, w, h boxes in canvas pixels, per-class scores)."""
        nc = len(self.class_names)
        if self.family == "yolov8":
            # Ultralytics: [4 + nc, anchors]; class scores already sigmoid'ed, no objectness.
            pred = raw.T if raw.shape[0] == 4 + nc and raw.shape[1] != 4 + nc else raw
            return pred[:, :4], pred[:, 4 : 4 + nc]
        # YOLOX: [anchors, 5 + nc] raw grid offsets / log sizes, objectness, class probabilities.
        grid, stride = self._yolox_grid()
        if raw.shape[0] != grid.shape[0]:
            raise ValueError(f"{self.name}: {raw.shape[0]} anchors but strides give {grid.shape[0]}")
        xy = (raw[:, :2] + grid) * stride
        wh = np.exp(raw[:, 2:4]) * stride
        return np.concatenate([xy, wh], axis=1), raw[:, 4:5] * raw[:, 5 : 5 + nc]

    def _postprocess(
        self, raw: np.ndarray, lb: _Letterbox, score_threshold: float, iou: float
    ) -> list[Detection]:
        if self.family in END_TO_END_FAMILIES:
            xyxy, scores, class_ids = self._end_to_end(raw, score_threshold)
        else:
            xyxy, scores, class_ids = self._nms_candidates(raw, score_threshold, iou)
        return self._to_detections(xyxy, scores, class_ids, lb)

    def _nms_candidates(
        self, raw: np.ndarray, score_threshold: float, iou: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw-head families: threshold, class-wise NMS -> (xyxy canvas pixels, scores, class ids)."""
        cxcywh, class_scores = self._candidates(raw)
        class_ids = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(class_scores.shape[0]), class_ids]
        mask = scores >= score_threshold
        cxcywh, scores, class_ids = cxcywh[mask], scores[mask], class_ids[mask]
        if scores.size > _MAX_NMS_CANDIDATES:
            top = np.argpartition(-scores, _MAX_NMS_CANDIDATES)[:_MAX_NMS_CANDIDATES]
            cxcywh, scores, class_ids = cxcywh[top], scores[top], class_ids[top]
        half = cxcywh[:, 2:4] / 2
        xyxy = np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1)
        keep = grouped_nms(xyxy, scores, class_ids, iou)[:_MAX_DETECTIONS]
        return xyxy[keep], scores[keep], class_ids[keep]

    def _to_detections(
        self, xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, lb: _Letterbox
    ) -> list[Detection]:
        if not scores.size:
            return []
        # Undo the letterbox, clip to the image, then normalise to 0..1.
        xyxy = (xyxy - np.array([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y], dtype=np.float32)) / lb.ratio
        xyxy = np.clip(xyxy, 0, np.array([lb.width, lb.height, lb.width, lb.height], dtype=np.float32))
        norm = xyxy / np.array([lb.width, lb.height, lb.width, lb.height], dtype=np.float32)
        xywh = np.concatenate([norm[:, :2], norm[:, 2:] - norm[:, :2]], axis=1)
        return [
            Detection(
                class_name=self.class_names[int(c)],
                class_id=int(c),
                score=float(s),
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            )
            for b, s, c in zip(xywh, scores, class_ids, strict=True)
            if b[2] > 0 and b[3] > 0  # a box clipped away entirely is no detection
        ]

    # ---- public API ----------------------------------------------------------------------------
    def detect(
        self,
        images: Sequence[Image.Image],
        score_threshold: float | None = None,
        nms_iou: float | None = None,
    ) -> list[list[Detection]]:
        """Detections per image, best score first.

        `score_threshold` defaults to the manifest's storage threshold; evaluation passes a low
        value (0.001) to rank detections for mAP. Tag thresholds are applied later, in tagging.
        `nms_iou` has no effect on end-to-end families (their head has already de-duplicated).
        """
        if not images:
            return []
        threshold = self.score_threshold if score_threshold is None else score_threshold
        iou = self.nms_iou if nms_iou is None else nms_iou
        prepared = [self._letterbox(img) for img in images]
        batch = self.fixed_batch or self.batch_size
        # Rectangular canvases differ in shape: only images of one shape share a run.
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, (tensor, _) in enumerate(prepared):
            by_shape.setdefault(tensor.shape, []).append(index)
        results: dict[int, list[Detection]] = {}
        for indexes in by_shape.values():
            for start in range(0, len(indexes), batch):
                chunk = indexes[start : start + batch]
                tensor = np.stack([prepared[i][0] for i in chunk])
                if self.fixed_batch and tensor.shape[0] < self.fixed_batch:
                    # A fixed batch > 1 still needs full batches: pad with copies, drop their outputs.
                    pad = np.repeat(tensor[-1:], self.fixed_batch - tensor.shape[0], axis=0)
                    tensor = np.concatenate([tensor, pad])
                output = self.onnx.run({self.input_name: tensor})[0]
                for row, index in enumerate(chunk):
                    results[index] = self._postprocess(output[row], prepared[index][1], threshold, iou)
        return [results[index] for index in range(len(prepared))]


def load_object_detector(settings: Settings, name: str | None = None) -> ObjectDetector:
    """The detector named here, else the one settings name (SHOEBOX_OBJECTS_MODEL), else the manifest
    default for role "objects"."""
    manifest = load_manifest()
    chosen = name or settings.objects_model
    entry = manifest.by_name(chosen) if chosen else manifest.default_for("objects")
    return ObjectDetector(entry, settings)
