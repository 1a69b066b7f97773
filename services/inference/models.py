"""The model set: every model role of one app, built from that app's settings, once, on first use.

The app factory makes one `ModelSet` and hands it to routes (a dependency) and to jobs (their
context); nothing reaches models through a global, so an app built with one model directory never
loads another's files.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from core.config import Settings
from core.errors import ModelMissing
from onnx_models.manifest import ModelEntry, load_manifest
from services.inference.alignment import ImageTextAligner, default_alignment_entry
from services.inference.base import InferenceModel
from services.inference.faces import (
    FaceAnalyzer,
    FaceDetector,
    FaceEmbedder,
    MtcnnDetector,
    YuNetDetector,
    load_face_detector,
)
from services.inference.labels import ImageLabeler
from services.inference.objects import ObjectDetector, load_object_detector
from services.inference.rotation import RotationHead, default_rotation_entry
from services.inference.text import TextEmbedder

log = logging.getLogger(__name__)
T = TypeVar("T")

# Which class serves a manifest entry, by role and family (None: any family of that role).
_IMPLEMENTATIONS: dict[tuple[str, str | None], type[InferenceModel]] = {
    ("objects", None): ObjectDetector,
    ("labels", None): ImageLabeler,
    ("face_detection", "yunet"): YuNetDetector,
    ("face_detection", "mtcnn"): MtcnnDetector,
    ("face_embedding", None): FaceEmbedder,
    ("text", None): TextEmbedder,
    ("text_alignment", None): ImageTextAligner,
    ("rotation", None): RotationHead,
}


def implementation_for(entry: ModelEntry) -> type[InferenceModel]:
    cls = _IMPLEMENTATIONS.get((entry.role, entry.family)) or _IMPLEMENTATIONS.get((entry.role, None))
    if cls is None:
        raise ValueError(f"no implementation for {entry.role} model family {entry.family!r} ({entry.name})")
    return cls


def check_manifest() -> None:
    """Start-up check: every default model's preprocessing parses into its typed shape."""
    manifest = load_manifest()
    for entry in manifest.models:
        if entry.default:
            implementation_for(entry).check_entry(entry)


class ModelSet:
    """Lazily built, shared by every request and job worker of the app (sessions are thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Re-entrant: the face pipeline is built from the detector and embedder roles.
        self._lock = threading.RLock()
        self._built: dict[str, object] = {}

    def _get(self, role: str, kind: type[T], build: Callable[[], T]) -> T:
        with self._lock:
            model = self._built.get(role)
            if model is None:
                model = build()
                self._built[role] = model
                log.info("model for %s ready", role)
            assert isinstance(model, kind)
            return model

    @property
    def objects(self) -> ObjectDetector:
        return self._get("objects", ObjectDetector, lambda: load_object_detector(self.settings))

    @property
    def labels(self) -> ImageLabeler:
        return self._get(
            "labels", ImageLabeler, lambda: ImageLabeler(load_manifest().default_for("labels"), self.settings)
        )

    @property
    def face_detector(self) -> FaceDetector:
        return self._get(
            "face_detection",
            FaceDetector,  # type: ignore[type-abstract]  # an isinstance check, never instantiated
            lambda: load_face_detector(self.settings),
        )

    @property
    def face_embedder(self) -> FaceEmbedder:
        return self._get(
            "face_embedding",
            FaceEmbedder,
            lambda: FaceEmbedder(load_manifest().default_for("face_embedding"), self.settings),
        )

    @property
    def faces(self) -> FaceAnalyzer:
        return self._get("faces", FaceAnalyzer, lambda: FaceAnalyzer(self.face_detector, self.face_embedder))

    @property
    def text(self) -> TextEmbedder:
        # Queries are a few tokens: one thread runs MiniLM 3x faster than two that must sync
        # (measured: 4 ms vs 14 ms for a 3-token query on 2 cores), and leaves a core to the server.
        one_thread = self.settings.model_copy(update={"onnx_intra_op_threads": 1})
        return self._get(
            "text", TextEmbedder, lambda: TextEmbedder(load_manifest().default_for("text"), one_thread)
        )

    @property
    def alignment(self) -> ImageTextAligner:
        return self._get(
            "text_alignment",
            ImageTextAligner,
            lambda: ImageTextAligner(default_alignment_entry(), self.settings),
        )

    @property
    def rotation(self) -> RotationHead:
        return self._get(
            "rotation",
            RotationHead,
            lambda: RotationHead(default_rotation_entry(), self.settings, self.labels),
        )

    def warm_up(self) -> None:
        """Build and run every default model now, so the first request does not pay for loading."""
        for model in (self.objects, self.labels, self.face_detector, self.face_embedder, self.text):
            model.warm_up()
        try:
            self.alignment.warm_up()
        except ModelMissing as missing:  # optional: text search then ranks by words and summaries
            log.warning("no text alignment head: %s", missing.detail)
        try:
            self.rotation.warm_up()
        except ModelMissing as missing:  # optional: photos then get no rotation suggestion
            log.warning("no rotation head: %s", missing.detail)
