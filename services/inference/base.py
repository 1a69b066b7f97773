"""The template every model follows: built from its manifest entry and the app's settings.

A subclass names its role and the typed shape of its manifest `preprocessing`, then loads its
sessions in `__init__` through `session()`; `warm_up` runs it once on a tiny input so the first
real request does not pay for ONNX Runtime's lazy initialisation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from core.config import Settings
from onnx_models.manifest import ModelEntry, Role
from services.inference.runtime import OnnxSession, get_session


class Preprocessing(BaseModel):
    """Base of every typed `preprocessing` block: unknown keys are a manifest error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InferenceModel(ABC):
    role: ClassVar[Role]
    preprocessing_type: ClassVar[type[Preprocessing]]

    def __init__(self, entry: ModelEntry, settings: Settings) -> None:
        if entry.role != self.role:
            raise ValueError(f"model {entry.name!r} has role {entry.role!r}, not {self.role!r}")
        self.entry = entry
        self.settings = settings
        self.model_name = entry.name

    @classmethod
    def check_entry(cls, entry: ModelEntry) -> Preprocessing:
        """Validate the entry's preprocessing without loading anything (start-up check)."""
        return cls.preprocessing_type.model_validate(entry.preprocessing)

    def session(self, file_name: str | None = None) -> OnnxSession:
        return get_session(file_name or self.entry.file, self.settings)

    @abstractmethod
    def warm_up(self) -> None:
        """Run once on a small input."""
