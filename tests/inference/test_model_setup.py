"""`python -m onnx_models.setup`: idempotent, fast when nothing changed, loud about bad files."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from onnx_models.manifest import Manifest, ModelEntry, TensorSpec, load_manifest
from onnx_models.setup import STAMP_NAME, onnx_problems, run_setup, sha256_of
from tests.paths import MODEL_DIR, REPO_ROOT, SHARED_DIR

MIRROR = SHARED_DIR / "models"
MIRROR_ENTRIES = [entry for entry in load_manifest().models if entry.obtain == "mirror"]
# The smallest mirror file keeps the copying tests quick.
VICTIM = min(MIRROR_ENTRIES, key=lambda entry: entry.size_bytes or 0)


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SHOEBOX_MODEL_MIRROR"}
    return subprocess.run(
        [sys.executable, "-m", "onnx_models.setup", *map(str, args)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def file_states(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in directory.iterdir()
        if p.is_file() and p.name != STAMP_NAME
    }


def mirror_copy(tmp_path: Path, *, drop: str | None = None, corrupt: str | None = None) -> Path:
    """A mirror of symlinks to the real one, minus `drop`, with `corrupt` as a bit-flipped copy."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for entry in MIRROR_ENTRIES:
        name = entry.file
        if name == drop:
            continue
        if name == corrupt:
            data = bytearray((MIRROR / name).read_bytes())
            data[len(data) // 2] ^= 0xFF
            (mirror / name).write_bytes(bytes(data))
        else:
            (mirror / name).symlink_to(MIRROR / name)
    return mirror


@pytest.fixture(scope="module")
def first_run() -> subprocess.CompletedProcess[str]:
    """Set up the real model directory (exports only if not cached: the first time ~10-20 s)."""
    return run_cli("--model-dir", MODEL_DIR, "--mirror", MIRROR)


def test_setup_succeeds_and_prints_one_line_per_model(first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0, first_run.stdout + first_run.stderr
    for entry in load_manifest().models:
        assert entry.name in first_run.stdout
        for name in [entry.file, *entry.extra_files]:
            assert (MODEL_DIR / name).is_file()


def test_second_run_touches_nothing(first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0, first_run.stdout + first_run.stderr
    before = file_states(MODEL_DIR)
    second = run_cli("--model-dir", MODEL_DIR, "--mirror", MIRROR)
    assert second.returncode == 0, second.stdout + second.stderr
    # Speed is a bench figure (README: second run ~0.3 s); here: the stamp short-cut was taken.
    assert "export cached" in second.stdout or "unchanged" in second.stdout, second.stdout
    assert file_states(MODEL_DIR) == before


def test_full_verify_recopies_and_reexports_nothing(first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0, first_run.stdout + first_run.stderr
    before = file_states(MODEL_DIR)
    again = run_cli("--model-dir", MODEL_DIR, "--mirror", MIRROR, "--verify")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already present" in again.stdout and "export cached" in again.stdout
    assert file_states(MODEL_DIR) == before


def test_missing_mirror_file_is_named(tmp_path: Path) -> None:
    mirror = mirror_copy(tmp_path, drop=VICTIM.file)
    model_dir = tmp_path / "models"
    only = ",".join(entry.name for entry in MIRROR_ENTRIES)
    result = run_cli("--model-dir", model_dir, "--mirror", mirror, "--only", only)
    assert result.returncode != 0
    assert f"{VICTIM.file} is missing" in result.stderr
    assert str(mirror) in result.stderr
    assert "fix:" in result.stderr
    # The others were still installed.
    for entry in MIRROR_ENTRIES:
        assert (model_dir / entry.file).is_file() == (entry is not VICTIM)


def test_corrupt_mirror_file_is_named_and_not_installed(tmp_path: Path) -> None:
    mirror = mirror_copy(tmp_path, corrupt=VICTIM.file)
    model_dir = tmp_path / "models"
    result = run_cli("--model-dir", model_dir, "--mirror", mirror, "--only", VICTIM.name)
    assert result.returncode != 0
    assert f"{VICTIM.file} is corrupt" in result.stderr
    assert "sha256" in result.stderr
    assert not (model_dir / VICTIM.file).exists()


def test_corrupt_file_in_model_dir_is_replaced_from_mirror(tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    data = bytearray((MIRROR / VICTIM.file).read_bytes())
    data[100] ^= 0x01
    (model_dir / VICTIM.file).write_bytes(bytes(data))
    (report,) = run_setup(model_dir, MIRROR, only=[VICTIM.name])
    assert report.ok, report.problems
    assert report.action == "replaced corrupt file from mirror"
    assert sha256_of(model_dir / VICTIM.file) == VICTIM.sha256
    # And the next run leaves the good copy alone.
    before = file_states(model_dir)
    (again,) = run_setup(model_dir, MIRROR, only=[VICTIM.name], full_verify=True)
    assert again.ok and again.action == "already present"
    assert file_states(model_dir) == before


def test_missing_export_tool_is_reported_without_stopping_others(tmp_path: Path) -> None:
    ghost = ModelEntry(
        name="ghost",
        role="labels",
        family="none",
        file="ghost.onnx",
        inputs=[TensorSpec(name="input", shape=["N", 3, 8, 8])],
        outputs=[TensorSpec(name="out", shape=["N", 2])],
        licence="-",
        source="-",
        obtain="export:onnx_models.export_does_not_exist",
        extra_files=["ghost.labels.json"],
    )
    manifest = Manifest(models=[ghost, VICTIM])
    reports = {r.entry.name: r for r in run_setup(tmp_path / "models", MIRROR, manifest=manifest)}
    assert reports[VICTIM.name].ok
    ghost_report = reports["ghost"]
    assert not ghost_report.ok
    assert {p.file for p in ghost_report.problems} == {"ghost.onnx", "ghost.labels.json"}
    assert all("onnx_models.export_does_not_exist does not exist" in p.detail for p in ghost_report.problems)


def test_missing_export_extra_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def without_torch(name: str, package: str | None = None) -> object:
        return None if name == "torch" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_torch)
    manifest = Manifest(models=[load_manifest().by_name("efficientnet_lite0")])
    (report,) = run_setup(tmp_path / "models", None, manifest=manifest)
    assert not report.ok
    assert {p.file for p in report.problems} == {"efficientnet_lite0.onnx", "efficientnet_lite0.labels.json"}
    assert all("pip install -e '.[export]'" in p.detail for p in report.problems)


def test_signature_check_catches_wrong_names_and_fixed_dims(
    first_run: subprocess.CompletedProcess[str],
) -> None:
    assert first_run.returncode == 0, first_run.stdout + first_run.stderr
    entry = load_manifest().by_name("efficientnet_lite0")
    path = MODEL_DIR / entry.file
    assert onnx_problems(path, entry) == []
    wrong_size = entry.model_copy(update={"inputs": [TensorSpec(name="input", shape=["N", 3, 256, 256])]})
    assert any("dim 2 is 224" in p for p in onnx_problems(path, wrong_size))
    wrong_name = entry.model_copy(update={"outputs": [TensorSpec(name="probs", shape=["N", 1000])]})
    assert any("'probs' not in model" in p for p in onnx_problems(path, wrong_name))
    # A named input dim must be free in the file: this one is fixed at 224.
    said_free = entry.model_copy(update={"inputs": [TensorSpec(name="input", shape=["N", 3, "H", "W"])]})
    assert any("dim 2 is fixed at 224, manifest says free (H)" in p for p in onnx_problems(path, said_free))
