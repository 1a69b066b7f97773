"""The process's model set: each model role built once, on first use (or at start when configured)."""

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from services.inference.alignment import ImageTextAligner
from services.inference.faces import FaceAnalyzer
from services.inference.labels import ImageLabeler
from services.inference.objects import ObjectDetector, load_object_detector

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelSet:
    """Lazily built, shared by every request and job worker of the process (sessions are thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[str, Any] = {}

    def _get(self, role: str, build: Callable[[], T]) -> T:
        with self._lock:
            if role not in self._built:
                self._built[role] = build()
                log.info("model for %s ready", role)
            return self._built[role]

    @property
    def objects(self) -> ObjectDetector:
        return self._get("objects", load_object_detector)

    @property
    def labels(self) -> ImageLabeler:
        return self._get("labels", ImageLabeler)

    @property
    def faces(self) -> FaceAnalyzer:
        return self._get("faces", FaceAnalyzer)

    @property
    def alignment(self) -> ImageTextAligner:
        return self._get("text_alignment", ImageTextAligner)

    def warm_up(self) -> None:
        """Build every default model now, so the first request does not pay for loading."""
        _ = self.objects, self.labels, self.faces, self.alignment


_models = ModelSet()


def get_models() -> ModelSet:
    return _models
