"""Photos in the sentence space: the trained alignment head over EfficientNet-Lite0's embedding.

The head (onnx_models/train_text_alignment.py) maps the pooled image embedding into the space of
all-MiniLM-L6-v2, so a query sentence's MiniLM vector can be compared with a photo directly. It was
trained on photos squashed to 224x224 without keeping their aspect (that is how the Flickr8k training
copies come), so the image embedding here is computed the same way: the labeler's model with a
"stretch" resize instead of its centre crop (bench/reports/search.md measures the difference).

Stored vectors carry `model_name`, which includes a digest of the head file: a retrained head gets a
new name, so old vectors are never mixed with new ones and the photos are re-embedded.
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from core.config import Settings
from onnx_models.manifest import ModelEntry, load_manifest
from services.inference.base import InferenceModel, Preprocessing
from services.inference.labels import ImageLabeler
from services.inference.runtime import OnnxSession
from services.inference.tensors import l2_normalise

log = logging.getLogger(__name__)

ALIGNMENT_ROLE = "text_alignment"


@lru_cache(maxsize=8)
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def head_version(path: Path) -> str:
    """First 12 hex digits of the head file's sha256 (cached per size and mtime)."""
    stat = path.stat()
    return _file_digest(path.resolve(), stat.st_size, stat.st_mtime_ns)[:12]


def stored_vector_name(entry: ModelEntry, model_dir: Path) -> str:
    """The name a photo's vector is stored under: the head's name and its file's version."""
    return f"{entry.name}@{head_version(model_dir / entry.file)}"


def default_alignment_entry() -> ModelEntry:
    manifest = load_manifest()
    for entry in manifest.models:
        if entry.role == ALIGNMENT_ROLE and entry.default:
            return entry
    raise KeyError(f"no default model for role {ALIGNMENT_ROLE!r} in the manifest")


class AlignmentPreprocessing(Preprocessing):
    image_model: str
    # The head was trained on photos squashed to the input size, so serving squashes them too.
    image_resize: Literal["stretch", "short_side_then_center_crop"] = "stretch"
    text_model: str


class ImageTextAligner(InferenceModel):
    """`embed(images)` -> float32 [N, 384] unit vectors in the MiniLM sentence space."""

    role = "text_alignment"
    preprocessing_type = AlignmentPreprocessing

    def __init__(self, entry: ModelEntry, settings: Settings, max_batch: int = 32) -> None:
        super().__init__(entry, settings)
        pp = AlignmentPreprocessing.model_validate(entry.preprocessing)
        image_entry = load_manifest().by_name(pp.image_model)
        # The image model's own normalisation, with the resize the head was trained on.
        squashed = {**image_entry.preprocessing, "resize": pp.image_resize}
        self.image_model = ImageLabeler(
            image_entry.model_copy(update={"preprocessing": squashed}), settings, max_batch=max_batch
        )
        self.text_model_name = pp.text_model
        self.input_name = entry.inputs[0].name
        self.output_name = entry.outputs[0].name
        self.dim = int(entry.outputs[0].shape[-1])
        self.onnx: OnnxSession = self.session()
        # Stored vectors carry the head file's version: a retrained head never mixes with the old.
        self.model_name = stored_vector_name(entry, settings.model_dir)

    def warm_up(self) -> None:
        self.embed([Image.new("RGB", (32, 32))])

    def project(self, image_embeddings: np.ndarray) -> np.ndarray:
        """Image-model embeddings [N, D] (unit) -> sentence-space unit vectors [N, dim]."""
        if not len(image_embeddings):
            return np.zeros((0, self.dim), dtype=np.float32)
        features = np.ascontiguousarray(image_embeddings, dtype=np.float32)
        (projected,) = self.onnx.run({self.input_name: features}, [self.output_name])
        return l2_normalise(projected)

    def image_embeddings(self, images: list[Image.Image]) -> np.ndarray:
        """The image model's unit embeddings [N, D] of the photos as the head reads them (squashed)."""
        return self.image_model.embed_turns(images, (0,))[:, 0]

    def embed(self, images: list[Image.Image]) -> np.ndarray:
        """Orientation-corrected photos -> sentence-space unit vectors, batched."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.project(self.image_embeddings(images))
