"""The model manifest: every model the service can run, as data (manifest.json beside this file)."""

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

MANIFEST_PATH = Path(__file__).with_name("manifest.json")

Role = Literal["objects", "labels", "face_detection", "face_embedding", "text", "text_alignment", "rotation"]


class TensorSpec(BaseModel):
    name: str
    shape: list[int | str]
    dtype: str = "float32"


class ModelEntry(BaseModel):
    name: str
    role: Role
    family: str  # picks the pre/post-processing class, e.g. "yolov8", "yolox", "yunet"
    file: str
    sha256: str | None = None  # None for exported files whose bytes vary by export run
    # False for a file trained here: the recorded sha256 is what the trainer gave on the machine that
    # recorded it, another CPU may differ in the last bits. A mismatch is then a warning and the file
    # is verified by its ONNX signature instead.
    sha256_reproducible: bool = True
    size_bytes: int | None = None
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    licence: str
    source: str
    # How set-up obtains it: "mirror" (copy from SHOEBOX_MODEL_MIRROR) or "export:<tool module>".
    obtain: str
    default: bool = False
    extra_files: list[str] = Field(default_factory=list)


class Manifest(BaseModel):
    models: list[ModelEntry]

    def by_name(self, name: str) -> ModelEntry:
        for entry in self.models:
            if entry.name == name:
                return entry
        raise KeyError(f"no model named {name!r} in the manifest")

    def default_for(self, role: Role) -> ModelEntry:
        for entry in self.models:
            if entry.role == role and entry.default:
                return entry
        raise KeyError(f"no default model for role {role!r} in the manifest")


@lru_cache
def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    return Manifest.model_validate(json.loads(path.read_text()))
