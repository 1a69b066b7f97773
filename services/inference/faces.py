"""Face pipeline model layer: detection (YuNet or MTCNN), 5-point alignment, embedding, quality.

Images given to this module are PIL images with the EXIF orientation already applied; every
coordinate it returns is relative to that image (normalised 0..1, origin top-left).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image

from core.config import Settings
from onnx_models.manifest import ModelEntry, load_manifest
from services.inference.base import InferenceModel, Preprocessing
from services.inference.face_align import (
    ARCFACE_112,
    MIN_FACE_PX,
    MIN_SHARPNESS,
    TEMPLATES,
    FaceQuality,
    FaceTemplate,
    align_face,
    face_quality,
)
from services.inference.runtime import OnnxSession
from services.inference.tensors import grouped_nms, l2_normalise, nms

log = logging.getLogger(__name__)

__all__ = [
    "ARCFACE_112",
    "FaceAnalyzer",
    "FaceDetection",
    "FaceDetector",
    "FaceEmbedder",
    "FaceQuality",
    "FaceResult",
    "FaceTemplate",
    "MtcnnDetector",
    "YuNetDetector",
    "align_face",
    "face_quality",
    "load_face_detector",
]


@dataclass(frozen=True)
class FaceDetection:
    """One face. box = [x, y, w, h] and landmarks = 5 x [x, y], normalised by the image size.

    Landmark order: left eye, right eye, nose tip, left mouth corner, right mouth corner, where
    left/right are image-left/right (the order of the ArcFace template). The box is clipped to the
    image; landmarks are not (a face cut by the border can have a point just outside).
    """

    box: list[float]
    landmarks: list[list[float]]
    score: float
    image_size: tuple[int, int]  # (width, height) in pixels of the image the detection refers to

    @classmethod
    def from_pixels(
        cls, box_xyxy: np.ndarray, landmarks: np.ndarray, score: float, image_size: tuple[int, int]
    ) -> FaceDetection:
        w, h = image_size
        x1, y1, x2, y2 = np.clip(np.asarray(box_xyxy, dtype=np.float64), 0, [w, h, w, h])
        norm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2) / [w, h]
        return cls(
            box=[x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h],
            landmarks=norm.round(6).tolist(),
            score=float(score),
            image_size=(int(w), int(h)),
        )

    def box_xyxy_px(self) -> np.ndarray:
        w, h = self.image_size
        x, y, bw, bh = self.box
        return np.array([x * w, y * h, (x + bw) * w, (y + bh) * h])

    def landmarks_px(self) -> np.ndarray:
        return np.asarray(self.landmarks, dtype=np.float64) * self.image_size

    @property
    def size_px(self) -> float:
        """Short side of the box in pixels: the face-size measure used for quality."""
        w, h = self.image_size
        return float(min(self.box[2] * w, self.box[3] * h))

    @property
    def area_px(self) -> float:
        w, h = self.image_size
        return float(self.box[2] * w * self.box[3] * h)


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


class FaceDetector(InferenceModel):
    """Common interface: a list of images in, one list of faces per image out (best first)."""

    role = "face_detection"

    def __init__(self, entry: ModelEntry, settings: Settings) -> None:
        super().__init__(entry, settings)
        self.name = entry.name

    @abstractmethod
    def detect(self, images: Sequence[Image.Image]) -> list[list[FaceDetection]]: ...

    def warm_up(self) -> None:
        self.detect([Image.new("RGB", (64, 64))])


class YuNetPreprocessing(Preprocessing):
    channels: Literal["BGR"] = "BGR"
    scale: float = 1.0
    pad_multiple: int = 32
    score_threshold: float
    nms_iou: float
    strides: tuple[int, ...] = (8, 16, 32)


class MtcnnPreprocessing(Preprocessing):
    channels: Literal["RGB"] = "RGB"
    mean: float = 127.5
    scale: float = 0.0078125
    min_face_px: float = 20.0
    scale_factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)


class FaceEmbeddingPreprocessing(Preprocessing):
    input_size: int = 112
    channels: Literal["RGB", "BGR"] = "BGR"
    mean: float = 127.5
    scale: float = 1 / 127.5
    template: str = "arcface_112"


# --- YuNet ----------------------------------------------------------------------------------------


class YuNetDetector(FaceDetector):
    """OpenCV Zoo YuNet (MODELS.md section 6): one anchor per cell, strides 8/16/32, BGR 0..255.

    Images are resized so the long side is `target_side`, then zero-padded to a multiple of 32: down
    for big photos (speed), up (at most `max_upscale` times) for small web images, whose faces YuNet
    localises better at its trained scale. On the faces set (140-380 px photos) upscaling up to 3x
    raised k=1 identification from 0.965 (none) and 0.973 (2x) to 0.978; bench/reports/face_detectors.md.
    """

    preprocessing_type = YuNetPreprocessing

    def __init__(
        self,
        entry: ModelEntry,
        settings: Settings,
        target_side: int = 640,
        max_upscale: float = 3.0,
        score_threshold: float | None = None,
        nms_iou: float | None = None,
    ) -> None:
        super().__init__(entry, settings)
        pre = YuNetPreprocessing.model_validate(entry.preprocessing)
        self.onnx: OnnxSession = self.session()
        self.strides = list(pre.strides)
        self.pad_multiple = pre.pad_multiple
        self.score_threshold = pre.score_threshold if score_threshold is None else score_threshold
        self.nms_iou = pre.nms_iou if nms_iou is None else nms_iou
        self.target_side = target_side
        self.max_upscale = max_upscale
        self.top_k = 5000  # candidates kept before NMS, as OpenCV's FaceDetectorYN does

    def _scale_for(self, size: tuple[int, int]) -> float:
        return min(self.target_side / max(size), self.max_upscale)

    def detect(self, images: Sequence[Image.Image]) -> list[list[FaceDetection]]:
        # The model's batch dimension is fixed at 1, and photos differ in size anyway.
        return [self._detect_one(_rgb(img)) for img in images]

    def _detect_one(self, image: Image.Image) -> list[FaceDetection]:
        w, h = image.size
        scale = self._scale_for((w, h))
        rw, rh = max(1, round(w * scale)), max(1, round(h * scale))
        resized = image.resize((rw, rh), Image.Resampling.BILINEAR) if (rw, rh) != (w, h) else image
        m = self.pad_multiple
        ph, pw = -(-rh // m) * m, -(-rw // m) * m
        blob = np.zeros((1, 3, ph, pw), dtype=np.float32)
        blob[0, :, :rh, :rw] = np.asarray(resized, dtype=np.float32)[:, :, ::-1].transpose(2, 0, 1)
        outputs = dict(zip(self.onnx.output_names, self.onnx.run({"input": blob}), strict=True))

        boxes, kps, scores = [], [], []
        for s in self.strides:
            cols = pw // s
            cls = outputs[f"cls_{s}"].reshape(-1)
            obj = outputs[f"obj_{s}"].reshape(-1)
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            keep = np.flatnonzero(score >= self.score_threshold)
            if keep.size == 0:
                continue
            bbox = outputs[f"bbox_{s}"].reshape(-1, 4)[keep]
            kp = outputs[f"kps_{s}"].reshape(-1, 10)[keep].reshape(-1, 5, 2)
            anchor = np.stack([keep % cols, keep // cols], axis=1).astype(np.float32)  # (col, row)
            centre = (anchor + bbox[:, :2]) * s
            size = np.exp(bbox[:, 2:4]) * s
            boxes.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
            kps.append((anchor[:, None, :] + kp) * s)
            scores.append(score[keep])
        if not boxes:
            return []
        all_boxes = np.concatenate(boxes) / scale
        all_kps = np.concatenate(kps) / scale
        all_scores = np.concatenate(scores)
        top = np.argsort(-all_scores)[: self.top_k]
        keep = top[nms(all_boxes[top], all_scores[top], self.nms_iou)]
        return [FaceDetection.from_pixels(all_boxes[i], all_kps[i], all_scores[i], (w, h)) for i in keep]


# --- MTCNN ----------------------------------------------------------------------------------------


class MtcnnDetector(FaceDetector):
    """MTCNN cascade (Zhang et al. 2016) around the three exported nets, following facenet-pytorch.

    P-net runs fully convolutionally over an image pyramid; its candidates from every image are then
    checked by R-net and O-net in batches. Images whose short side is below `min_side` are upscaled
    first: in small web images that lets the pyramid see faces near its 20 px floor at a scale where
    O-net's landmarks are accurate (k=1 identification 0.971 -> 0.985 on the faces set).
    """

    preprocessing_type = MtcnnPreprocessing

    def __init__(
        self,
        entry: ModelEntry,
        settings: Settings,
        min_face_px: float | None = None,
        thresholds: Sequence[float] | None = None,
        scale_factor: float | None = None,
        min_side: int = 320,
        max_side: int = 1280,
        batch_size: int = 256,
    ) -> None:
        super().__init__(entry, settings)
        pre = MtcnnPreprocessing.model_validate(entry.preprocessing)
        self.pnet = self.session()
        rnet_file = next(f for f in entry.extra_files if "rnet" in f)
        onet_file = next(f for f in entry.extra_files if "onet" in f)
        self.rnet = self.session(rnet_file)
        self.onet = self.session(onet_file)
        self.mean = pre.mean
        self.scale = pre.scale
        self.min_face_px = pre.min_face_px if min_face_px is None else float(min_face_px)
        self.thresholds = list(pre.thresholds if thresholds is None else thresholds)
        self.scale_factor = pre.scale_factor if scale_factor is None else float(scale_factor)
        self.min_side = min_side
        self.max_side = max_side
        self.batch_size = batch_size

    # The three stages work on float64 [K, 5+] arrays: x1, y1, x2, y2, score, (4 regression values).

    def _normalise(self, array: np.ndarray) -> np.ndarray:
        """uint8 HWC -> float32 NCHW in the nets' range."""
        x = (array.astype(np.float32) - self.mean) * self.scale
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if x.ndim == 4 else x.transpose(2, 0, 1)[None])

    def _stage1(self, image: Image.Image) -> np.ndarray:
        w, h = image.size
        m = 12.0 / self.min_face_px
        scales = []
        side = min(w, h) * m
        s = m
        while side >= 12:
            scales.append(s)
            s *= self.scale_factor
            side *= self.scale_factor
        cands = []
        for s in scales:
            size = (int(w * s + 1), int(h * s + 1))
            # BOX resampling averages source pixels, like the "area" resize facenet-pytorch uses.
            level = np.asarray(image.resize(size, Image.Resampling.BOX))
            reg, prob = self.pnet.run({"input": self._normalise(level)})
            prob = prob[0, 1]
            rows, cols = np.nonzero(prob >= self.thresholds[0])
            if rows.size == 0:
                continue
            # Each output cell sees a 12x12 window with stride 2 of the scaled image.
            x1 = np.floor((2 * cols + 1) / s)
            y1 = np.floor((2 * rows + 1) / s)
            x2 = np.floor((2 * cols + 12) / s)
            y2 = np.floor((2 * rows + 12) / s)
            c = np.stack([x1, y1, x2, y2, prob[rows, cols], *reg[0][:, rows, cols]], axis=1)
            cands.append(c[nms(c[:, :4], c[:, 4], 0.5)])
        if not cands:
            return np.zeros((0, 5))
        boxes = np.concatenate(cands)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        bw = (boxes[:, 2] - boxes[:, 0])[:, None]
        bh = (boxes[:, 3] - boxes[:, 1])[:, None]
        refined = boxes[:, :4] + boxes[:, 5:9] * np.hstack([bw, bh, bw, bh])
        return _square(np.hstack([refined, boxes[:, 4:5]]))

    def _crops(
        self, images: list[Image.Image], boxes: np.ndarray, owner: np.ndarray, size: int
    ) -> np.ndarray:
        """Square crops resized to size x size; parts outside the image are black (zero padding)."""
        out = np.empty((len(boxes), size, size, 3), dtype=np.uint8)
        ints = np.trunc(boxes[:, :4]).astype(np.int64)
        for k, ((x1, y1, x2, y2), i) in enumerate(zip(ints, owner, strict=True)):
            # 1-based inclusive boxes (the Matlab heritage of the reference code) -> PIL's 0-based box.
            crop = images[i].crop((int(x1) - 1, int(y1) - 1, max(int(x2), int(x1)), max(int(y2), int(y1))))
            out[k] = np.asarray(crop.resize((size, size), Image.Resampling.BOX))
        return out

    def _run_batched(self, session: OnnxSession, crops: np.ndarray) -> list[np.ndarray]:
        parts = [
            session.run({"input": self._normalise(crops[i : i + self.batch_size])})
            for i in range(0, len(crops), self.batch_size)
        ]
        return [np.concatenate(outs) for outs in zip(*parts, strict=True)]

    def detect(self, images: Sequence[Image.Image]) -> list[list[FaceDetection]]:
        if not images:
            return []
        originals = [_rgb(img) for img in images]
        work, factors = [], []
        for img in originals:
            f = 1.0
            long_side, short_side = max(img.size), min(img.size)
            if self.min_side and short_side < self.min_side:
                f = self.min_side / short_side
            if long_side * f > self.max_side:
                f = self.max_side / long_side
            factors.append(f)
            if f != 1.0:
                img = img.resize((round(img.width * f), round(img.height * f)), Image.Resampling.BILINEAR)
            work.append(img)

        stage1 = [self._stage1(img) for img in work]
        boxes = np.concatenate(stage1) if stage1 else np.zeros((0, 5))
        owner = np.concatenate([np.full(len(b), i) for i, b in enumerate(stage1)]).astype(np.int64)
        results: list[list[FaceDetection]] = [[] for _ in images]
        if len(boxes) == 0:
            return results

        # R-net: one batch for the candidates of every image.
        reg, prob = self._run_batched(self.rnet, self._crops(work, boxes, owner, 24))
        ok = prob[:, 1] > self.thresholds[1]
        boxes, owner, reg = boxes[ok], owner[ok], reg[ok]
        boxes[:, 4] = prob[ok, 1]
        keep = grouped_nms(boxes[:, :4], boxes[:, 4], owner, 0.7, "union")
        boxes, owner, reg = boxes[keep], owner[keep], reg[keep]
        boxes = _square(_regress(boxes, reg))
        if len(boxes) == 0:
            return results

        # O-net: final boxes, scores and landmarks.
        reg, lms, prob = self._run_batched(self.onet, self._crops(work, boxes, owner, 48))
        ok = prob[:, 1] > self.thresholds[2]
        boxes, owner, reg, lms = boxes[ok], owner[ok], reg[ok], lms[ok]
        boxes[:, 4] = prob[ok, 1]
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        # Landmarks are fractions of the O-net box: x in columns 0-4, y in 5-9.
        points = np.stack([bw * lms[:, :5] + boxes[:, 0:1] - 1, bh * lms[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        boxes = _regress(boxes, reg)
        keep = grouped_nms(boxes[:, :4], boxes[:, 4], owner, 0.7, "min")

        for k in keep:
            i = int(owner[k])
            f = factors[i]
            box = boxes[k, :4].copy()
            box[:2] -= 1  # back to 0-based pixel edges
            results[i].append(
                FaceDetection.from_pixels(box / f, points[k] / f, float(boxes[k, 4]), originals[i].size)
            )
        for faces in results:
            faces.sort(key=lambda d: -d.score)
        return results


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (R/O-net inputs are square)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    out[:, :4] = boxes[:, :4] + reg * np.hstack([w, h, w, h])
    return out


_DETECTORS: dict[str, type[FaceDetector]] = {"yunet": YuNetDetector, "mtcnn": MtcnnDetector}


def load_face_detector(settings: Settings, name: str | None = None) -> FaceDetector:
    """The manifest's default face detector, or the one named; its family picks the class."""
    manifest = load_manifest()
    entry = manifest.by_name(name) if name else manifest.default_for("face_detection")
    if entry.role != "face_detection":
        raise ValueError(f"model {entry.name!r} is a {entry.role} model, not a face detector")
    try:
        cls = _DETECTORS[entry.family]
    except KeyError:
        raise ValueError(f"no face detector implementation for family {entry.family!r}") from None
    return cls(entry, settings)


# --- embedding ------------------------------------------------------------------------------------


class FaceEmbedder(InferenceModel):
    """MobileFaceNet-ArcFace (MODELS.md section 3): aligned 112x112 crops -> L2-normalised vectors.

    flip_tta adds the embedding of the mirrored crop before normalising (a common ArcFace trick;
    see the benchmark report for what it buys here).
    """

    role = "face_embedding"
    preprocessing_type = FaceEmbeddingPreprocessing

    def __init__(
        self, entry: ModelEntry, settings: Settings, flip_tta: bool = True, batch_size: int = 64
    ) -> None:
        super().__init__(entry, settings)
        pre = FaceEmbeddingPreprocessing.model_validate(entry.preprocessing)
        self.onnx = self.session()
        self.input_name = entry.inputs[0].name
        self.size = pre.input_size
        self.template: FaceTemplate = TEMPLATES.get(pre.template, ARCFACE_112)
        self.bgr = pre.channels == "BGR"
        self.mean = pre.mean
        self.scale = pre.scale
        self.dim = int(entry.outputs[0].shape[-1])
        self.flip_tta = flip_tta
        self.batch_size = batch_size

    def warm_up(self) -> None:
        self.embed([np.zeros((self.size, self.size, 3), dtype=np.uint8)])

    def _to_array(self, face: np.ndarray | Image.Image) -> np.ndarray:
        if isinstance(face, Image.Image):
            face = _rgb(face)
            if face.size != (self.size, self.size):
                face = face.resize((self.size, self.size), Image.Resampling.BILINEAR)
            return np.asarray(face, dtype=np.uint8)
        arr = np.asarray(face)
        if arr.shape != (self.size, self.size, 3):
            raise ValueError(f"aligned face must be {self.size}x{self.size}x3 RGB, got {arr.shape}")
        return arr

    def embed(self, aligned: Sequence[np.ndarray | Image.Image]) -> np.ndarray:
        """[N, dim] float32 unit vectors for RGB aligned crops (PIL images or HxWx3 uint8 arrays)."""
        if len(aligned) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = np.stack([self._to_array(f) for f in aligned]).astype(np.float32)
        if self.bgr:
            batch = batch[..., ::-1]
        x = np.ascontiguousarray(((batch - self.mean) * self.scale).transpose(0, 3, 1, 2))
        out = self._run(x)
        if self.flip_tta:
            out = out + self._run(np.ascontiguousarray(x[..., ::-1]))
        return l2_normalise(out)

    def _run(self, x: np.ndarray) -> np.ndarray:
        parts = [
            self.onnx.run({self.input_name: x[i : i + self.batch_size]})[0]
            for i in range(0, len(x), self.batch_size)
        ]
        return np.concatenate(parts).astype(np.float32)


# --- the whole pipeline ---------------------------------------------------------------------------


@dataclass
class FaceResult:
    detection: FaceDetection
    embedding: np.ndarray  # (dim,) float32, unit norm
    quality: FaceQuality
    model_name: str  # the embedder that made `embedding` (embeddings of different models never mix)
    aligned: Image.Image | None = field(default=None, repr=False)  # kept only when asked for


class FaceAnalyzer:
    """Detection + alignment + one batched embedding call + quality, for the analysis job."""

    def __init__(
        self,
        detector: FaceDetector,
        embedder: FaceEmbedder,
        min_size_px: float = MIN_FACE_PX,
        min_sharpness: float = MIN_SHARPNESS,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.min_size_px = min_size_px
        self.min_sharpness = min_sharpness

    def analyze(self, images: Sequence[Image.Image], keep_aligned: bool = False) -> list[list[FaceResult]]:
        detections = self.detector.detect(images)
        crops: list[Image.Image] = []
        for image, faces in zip(images, detections, strict=True):
            rgb = _rgb(image)
            crops.extend(align_face(rgb, d.landmarks_px(), self.embedder.template)[0] for d in faces)
        embeddings = self.embedder.embed(crops)
        results: list[list[FaceResult]] = []
        k = 0
        for faces in detections:
            per_image = []
            for d in faces:
                quality = face_quality(d.size_px, crops[k], self.min_size_px, self.min_sharpness)
                per_image.append(
                    FaceResult(
                        d,
                        embeddings[k],
                        quality,
                        self.embedder.model_name,
                        crops[k] if keep_aligned else None,
                    )
                )
                k += 1
            results.append(per_image)
        return results
