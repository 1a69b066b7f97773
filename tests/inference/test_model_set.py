"""One ModelSet per app, built from that app's settings: every role loads from its model directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from api.main import create_app
from core.config import Settings
from onnx_models.manifest import load_manifest
from services.inference.models import ModelSet, check_manifest
from services.inference.runtime import OnnxSession
from tests.paths import MODEL_DIR


def linked_model_dir(target: Path) -> Path:
    """A second model directory holding the same files (symlinks), so paths tell the two apart."""
    target.mkdir()
    for path in MODEL_DIR.iterdir():
        (target / path.name).symlink_to(path.resolve())
    return target


def sessions_of(models: ModelSet) -> list[OnnxSession]:
    detector = models.face_detector
    detector_sessions = [
        getattr(detector, name) for name in ("onnx", "pnet", "rnet", "onet") if hasattr(detector, name)
    ]
    return [
        models.objects.onnx,
        models.labels.onnx,
        models.face_embedder.onnx,
        models.text.onnx,
        *detector_sessions,
    ]


def test_an_app_loads_every_model_from_its_own_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_dir = linked_model_dir(tmp_path / "models")
    # The environment points elsewhere: an app must not fall back to it.
    monkeypatch.setenv("SHOEBOX_MODEL_DIR", str(tmp_path / "nowhere"))
    app = create_app(Settings(data_dir=tmp_path / "data", model_dir=own_dir, run_job_workers=False))
    models: ModelSet = app.state.models
    assert models.settings.model_dir == own_dir
    sessions = sessions_of(models)
    assert len(sessions) >= 5
    for session in sessions:
        assert session.path.parent == own_dir.absolute(), session.path
    # And they work: one photo through the face pipeline, one sentence through the text model.
    assert models.faces.analyze([Image.new("RGB", (64, 64))]) == [[]]
    assert models.text.embed(["a dog"]).shape == (1, models.text.dim)


def test_a_model_set_without_its_files_names_what_is_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    models = ModelSet(Settings(model_dir=empty))
    with pytest.raises(Exception, match=load_manifest().default_for("labels").file):
        _ = models.labels


def test_the_manifest_preprocessing_is_validated_at_start_up() -> None:
    check_manifest()  # the shipped manifest parses into every model's typed preprocessing
    entry = load_manifest().default_for("labels")
    broken = entry.model_copy(update={"preprocessing": {**entry.preprocessing, "resize": "sideways"}})
    from services.inference.labels import ImageLabeler

    with pytest.raises(ValueError, match="resize"):
        ImageLabeler.check_entry(broken)
