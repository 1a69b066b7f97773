"""Helpers shared by the export tools.

Export tools run at set-up time only. They import torch and the weight-carrying packages inside
`export()`, never at module import, so that `onnx_models.setup` can import them cheaply and the
service never pulls torch in.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EXPORT_EXTRA_HINT = "install the export extra: pip install -e '.[export]'"
OPSET = 17


class ExportError(RuntimeError):
    """An export ran but its result is unusable (e.g. ONNX output differs from torch)."""


class ExportDependencyMissing(ExportError):
    """A package the export needs is not installed (they live in the `export` extra)."""


def require_modules(*modules: str) -> None:
    """Fail early, naming every missing package, instead of a bare ImportError halfway through."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportDependencyMissing(f"missing Python package(s) {', '.join(missing)}; {EXPORT_EXTRA_HINT}")


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    A crashed or interrupted export must never leave a half-written file that looks present.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def quiet_export() -> Iterator[None]:
    """Silence the exporter's known, harmless chatter (legacy-exporter deprecation, tracer notes).

    dynamo=False is deliberate: the TorchScript exporter gives the simple, opset-17 graphs the
    manifest describes, and every export is checked against torch afterwards anyway.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*legacy TorchScript-based ONNX export", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")
        warnings.filterwarnings("ignore", message=r".*[Tt]racer.*")
        yield


def write_json_atomic(path: Path, data: Any) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def max_abs_diff(got: np.ndarray, want: np.ndarray) -> float:
    if got.shape != want.shape:
        raise ExportError(f"shape mismatch: ONNX gave {got.shape}, torch gave {want.shape}")
    return float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))


def check_close(what: str, got: np.ndarray, want: np.ndarray, atol: float) -> float:
    """Max abs difference between the ONNX and torch outputs; raises if above `atol`."""
    diff = max_abs_diff(got, want)
    if not diff <= atol:  # written this way so NaN fails too
        raise ExportError(f"{what}: ONNX output differs from torch by {diff:.3g} (allowed {atol:g})")
    return diff


def export_cli(
    export: Callable[[Path], list[Path]], description: str, argv: Sequence[str] | None = None
) -> int:
    """`python -m onnx_models.export_<x> [--model-dir DIR]`: run one export on its own."""
    from core.config import get_settings

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model-dir", type=Path, default=None, help="default: SHOEBOX_MODEL_DIR / settings")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model_dir = args.model_dir or get_settings().model_dir
    try:
        paths = export(model_dir)
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def cached_photo_features(
    cache: Path, paths: Sequence[Path], embed: Callable[[list[Any]], np.ndarray], what: str, batch: int = 32
) -> np.ndarray:
    """Features of photos (decoded as the analysis decodes them), computed `batch` at a time by `embed`
    and kept in `cache` (.npy): a trainer's second run reads them back in seconds."""
    if cache.is_file():
        return np.asarray(np.load(cache), dtype=np.float32)
    import time

    from services.photos.images import ANALYSIS_MAX_SIDE, load_oriented

    started = time.perf_counter()
    parts: list[np.ndarray] = []
    for start in range(0, len(paths), batch):
        images = [
            load_oriented(p.read_bytes(), max_side=ANALYSIS_MAX_SIDE) for p in paths[start : start + batch]
        ]
        parts.append(embed(images))
        if (start // batch) % 25 == 0:
            log.info(
                "%s: %d/%d (%.0f s)", what, start + len(images), len(paths), time.perf_counter() - started
            )
    features = np.concatenate(parts).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(cache) as tmp, tmp.open("wb") as fh:
        np.save(fh, features)
    log.info("%s of %d photos in %.0f s", what, len(paths), time.perf_counter() - started)
    return features
