"""ImageNet labels and a global image embedding from one classifier run (EfficientNet-Lite0).

Everything model-specific (file, tensor names, input size, normalisation, resize policy) comes from
the manifest entry, so another classifier with the same two outputs (logits, pooled embedding)
drops in by editing the manifest.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from core.config import Settings
from core.errors import ModelMissing
from onnx_models.manifest import ModelEntry
from services.inference.base import InferenceModel, Preprocessing
from services.inference.runtime import OnnxSession
from services.inference.tensors import l2_normalise

log = logging.getLogger(__name__)

_RESAMPLING = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class LabelResult:
    # (class name, softmax probability), most probable first.
    labels: list[tuple[str, float]]
    # L2-normalised float32 vector (1280-d for EfficientNet-Lite0).
    embedding: np.ndarray


ResizePolicy = Literal["short_side_then_center_crop", "stretch"]


class LabelsPreprocessing(Preprocessing):
    input_size: int
    channels: Literal["RGB", "BGR"] = "RGB"
    # pixel -> (pixel * scale - mean) / std, per channel.
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resize: ResizePolicy = "short_side_then_center_crop"
    resize_short_side: int | None = None
    interpolation: Literal["bicubic", "bilinear", "lanczos", "nearest"] = "bilinear"


class ImageLabeler(InferenceModel):
    """Top-k ImageNet labels plus an image embedding, batched: one session run per batch.

    Images should already be orientation-corrected (EXIF applied); any PIL mode is accepted.
    """

    role = "labels"
    preprocessing_type = LabelsPreprocessing

    def __init__(self, entry: ModelEntry, settings: Settings, max_batch: int = 32) -> None:
        super().__init__(entry, settings)
        self.max_batch = max(1, max_batch)
        pp = LabelsPreprocessing.model_validate(entry.preprocessing)
        self.input_size = pp.input_size
        self.resize_policy = pp.resize
        self.short_side = pp.resize_short_side or pp.input_size
        self.resample = _RESAMPLING[pp.interpolation]
        self.channels = pp.channels
        self.scale = np.float32(pp.scale)
        self.mean = np.asarray(pp.mean, dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(pp.std, dtype=np.float32).reshape(3, 1, 1)
        # Manifest convention for role "labels": outputs[0] = logits, outputs[1] = pooled embedding.
        self.input_name = entry.inputs[0].name
        self.logits_name = entry.outputs[0].name
        self.embedding_name = entry.outputs[1].name
        self.embedding_dim = int(entry.outputs[1].shape[-1])
        self.onnx: OnnxSession = self.session()
        self.class_names = self._load_class_names(settings)

    def warm_up(self) -> None:
        self.predict([Image.new("RGB", (self.input_size, self.input_size))])

    def _load_class_names(self, settings: Settings) -> list[str]:
        name = next((f for f in self.entry.extra_files if f.endswith(".labels.json")), None)
        if name is None:
            raise ModelMissing(f"manifest entry {self.entry.name} names no .labels.json file")
        path = settings.model_dir / name
        if not path.is_file():
            raise ModelMissing(f"{name} is not in {settings.model_dir}; run `python -m onnx_models.setup`")
        names = json.loads(path.read_text(encoding="utf-8"))
        expected = self.entry.outputs[0].shape[-1]
        if isinstance(expected, int) and len(names) != expected:
            raise ModelMissing(f"{name} has {len(names)} names, the model has {expected} classes")
        return [str(n) for n in names]

    def preprocess(self, image: Image.Image, resize: ResizePolicy | None = None) -> np.ndarray:
        """One image -> float32 [3, S, S] as the manifest describes (`resize` overrides its policy)."""
        image = _to_rgb(image)
        policy = resize or self.resize_policy
        if policy == "short_side_then_center_crop":
            width, height = image.size
            ratio = self.short_side / min(width, height)
            # Never below the crop size, so the centre crop always fits.
            new_w = max(self.input_size, round(width * ratio))
            new_h = max(self.input_size, round(height * ratio))
            image = image.resize((new_w, new_h), self.resample)
            left = (new_w - self.input_size) // 2
            top = (new_h - self.input_size) // 2
            image = image.crop((left, top, left + self.input_size, top + self.input_size))
        elif policy == "stretch":
            image = image.resize((self.input_size, self.input_size), self.resample)
        else:
            raise ValueError(f"unknown resize policy {policy!r} in the manifest")
        pixels = np.asarray(image, dtype=np.float32)
        if self.channels == "BGR":
            pixels = pixels[..., ::-1]
        chw = pixels.transpose(2, 0, 1) * self.scale
        return np.ascontiguousarray((chw - self.mean) / self.std, dtype=np.float32)

    def predict(self, images: list[Image.Image], top_k: int = 5) -> list[LabelResult]:
        if not images:
            return []
        top_k = max(1, min(top_k, len(self.class_names)))
        results: list[LabelResult] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            batch = np.stack([self.preprocess(image) for image in chunk])
            logits, embeddings = self.onnx.run(
                {self.input_name: batch}, [self.logits_name, self.embedding_name]
            )
            probs = _softmax(logits.astype(np.float32))
            embeddings = l2_normalise(embeddings)
            for prob, embedding in zip(probs, embeddings, strict=True):
                # argpartition then sort the k winners: O(C) instead of a full sort of 1000 classes.
                top = np.argpartition(-prob, top_k - 1)[:top_k]
                top = top[np.argsort(-prob[top], kind="stable")]
                labels = [(self.class_names[i], float(prob[i])) for i in top]
                results.append(LabelResult(labels=labels, embedding=embedding))
        return results

    def embed_turns(
        self,
        images: list[Image.Image],
        turns: tuple[int, ...] = (90, 180, 270),
        resize: ResizePolicy | None = None,
    ) -> np.ndarray:
        """[N, len(turns), D] unit embeddings of each photo turned clockwise by each of `turns` degrees,
        resized by `resize` (default: the manifest's policy).

        The input tensor is turned, not the photo: a centre crop (or a stretch to the square) of a
        turned photo is the turned crop (stretch), so each view costs one network pass and no resize.
        """
        if not images:
            return np.zeros((0, len(turns), 0), dtype=np.float32)
        tensors = [self.preprocess(image, resize) for image in images]
        # np.rot90 turns counter-clockwise for positive k; axes (1, 2) are the tensor's H and W.
        views = np.stack([np.rot90(t, k=-(turn // 90), axes=(1, 2)) for t in tensors for turn in turns])
        parts = []
        for start in range(0, len(views), self.max_batch):
            chunk = np.ascontiguousarray(views[start : start + self.max_batch])
            (embeddings,) = self.onnx.run({self.input_name: chunk}, [self.embedding_name])
            parts.append(l2_normalise(embeddings))
        return np.concatenate(parts).reshape(len(images), len(turns), -1).astype(np.float32)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB view of any PIL mode; transparent areas become white rather than whatever is underneath."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))
