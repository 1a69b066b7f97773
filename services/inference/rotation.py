"""Which way up a photo is: the trained rotation head over EfficientNet-Lite0's embedding of each turn.

The head (onnx_models/train_rotation_head.py) scores each of a photo's four clockwise turns from
that turn's view together with the other three (what it becomes turned further); the four compete
through a softmax over their scores. The labeler's embedding of the photo as
stored is the analysis' own (labels), so the check costs three more labeler passes of the centre crop,
turned as a tensor (ImageLabeler.embed_turns), instead of three detector runs.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.config import Settings
from onnx_models.manifest import ModelEntry, load_manifest
from services.inference.base import InferenceModel, Preprocessing
from services.inference.labels import ImageLabeler
from services.inference.runtime import OnnxSession

# Clockwise degrees of the four views, in the order the scores come back.
TURNS = (0, 90, 180, 270)


class RotationHeadPreprocessing(Preprocessing):
    image_model: str


class RotationHead(InferenceModel):
    """`turn_probabilities(images, upright_embeddings)` -> [N, 4] over clockwise 0/90/180/270."""

    role = "rotation"
    preprocessing_type = RotationHeadPreprocessing

    def __init__(self, entry: ModelEntry, settings: Settings, labeler: ImageLabeler) -> None:
        super().__init__(entry, settings)
        pp = RotationHeadPreprocessing.model_validate(entry.preprocessing)
        if labeler.entry.name != pp.image_model:
            raise ValueError(f"{entry.name} was trained on {pp.image_model}, not {labeler.entry.name}")
        self.labeler = labeler
        self.input_name = entry.inputs[0].name
        self.output_name = entry.outputs[0].name
        self.onnx: OnnxSession = self.session()

    def warm_up(self) -> None:
        image = Image.new("RGB", (32, 32))
        self.turn_probabilities([image], self.labeler.predict([image])[0].embedding[None, :])

    def turn_probabilities(self, images: list[Image.Image], upright_embeddings: np.ndarray) -> np.ndarray:
        """Each photo's probability of needing each clockwise turn. `upright_embeddings` [N, D] are the
        labeler's embeddings of the photos as they are (the analysis has them already)."""
        if not images:
            return np.zeros((0, len(TURNS)), dtype=np.float32)
        turned = self.labeler.embed_turns(images, TURNS[1:])
        views = np.concatenate([np.asarray(upright_embeddings, dtype=np.float32)[:, None, :], turned], axis=1)
        (scores,) = self.onnx.run({self.input_name: np.ascontiguousarray(views)}, [self.output_name])
        logits = np.asarray(scores, dtype=np.float64).reshape(len(images), len(TURNS))
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        normalised: np.ndarray = (probabilities / probabilities.sum(axis=1, keepdims=True)).astype(np.float32)
        return normalised


def default_rotation_entry() -> ModelEntry:
    return load_manifest().default_for("rotation")
