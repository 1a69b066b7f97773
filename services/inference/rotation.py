"""Which way up a photo is: the trained rotation head over EfficientNet-Lite0's embedding of each turn.

The head (onnx_models/train_rotation_head.py) scores each of a photo's four clockwise turns from
that turn's view together with the other three (what it becomes turned further); the four compete
through a softmax over their scores. The views are the whole photo stretched to the labeler's square
(the manifest's `resize`), not the labels' centre crop, which cuts off the sky and the ground of a
sideways photo. The photo as it is, squashed so, is what the text-alignment head reads too, so the
analysis embeds it once for both, and the check costs three labeler passes of that tensor turned
(ImageLabeler.embed_turns) instead of three detector runs (bench/reports/rotation.md).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.config import Settings
from onnx_models.manifest import ModelEntry, load_manifest
from services.inference.base import InferenceModel, Preprocessing
from services.inference.labels import ImageLabeler, ResizePolicy
from services.inference.runtime import OnnxSession

# Clockwise degrees of the four views, in the order the scores come back.
TURNS = (0, 90, 180, 270)


class RotationHeadPreprocessing(Preprocessing):
    image_model: str
    # How the labeler's views are made (the trainer reads it from the manifest too).
    resize: ResizePolicy = "stretch"


class RotationHead(InferenceModel):
    """`turn_probabilities(images)` -> [N, 4] over clockwise 0/90/180/270."""

    role = "rotation"
    preprocessing_type = RotationHeadPreprocessing

    def __init__(self, entry: ModelEntry, settings: Settings, labeler: ImageLabeler) -> None:
        super().__init__(entry, settings)
        pp = RotationHeadPreprocessing.model_validate(entry.preprocessing)
        if labeler.entry.name != pp.image_model:
            raise ValueError(f"{entry.name} was trained on {pp.image_model}, not {labeler.entry.name}")
        self.labeler = labeler
        self.resize: ResizePolicy = pp.resize
        self.input_name = entry.inputs[0].name
        self.output_name = entry.outputs[0].name
        self.onnx: OnnxSession = self.session()

    def warm_up(self) -> None:
        self.turn_probabilities([Image.new("RGB", (32, 32))])

    def reads_upright_view_of(self, image_model: ImageLabeler) -> bool:
        """Whether `image_model`'s embeddings of the photos as they are are this head's upright views
        (the same network, resized the same way), so the check can take them instead of a pass."""
        return image_model.entry.name == self.labeler.entry.name and image_model.resize_policy == self.resize

    def turn_probabilities(
        self, images: list[Image.Image], upright_embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """Each photo's probability of needing each clockwise turn. `upright_embeddings` [N, D], where
        the caller has them, are the photos' views as they are (see reads_upright_view_of)."""
        if not images:
            return np.zeros((0, len(TURNS)), dtype=np.float32)
        if upright_embeddings is None:
            views = self.labeler.embed_turns(images, TURNS, self.resize)
        else:
            turned = self.labeler.embed_turns(images, TURNS[1:], self.resize)
            upright = np.asarray(upright_embeddings, dtype=np.float32)[:, None, :]
            views = np.concatenate([upright, turned], axis=1)
        (scores,) = self.onnx.run({self.input_name: np.ascontiguousarray(views)}, [self.output_name])
        logits = np.asarray(scores, dtype=np.float64).reshape(len(images), len(TURNS))
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        normalised: np.ndarray = (probabilities / probabilities.sum(axis=1, keepdims=True)).astype(np.float32)
        return normalised


def default_rotation_entry() -> ModelEntry:
    return load_manifest().default_for("rotation")
