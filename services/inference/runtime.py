"""The one owner of ONNX Runtime sessions: provider choice, threads, a per-process session cache."""

import logging
import os
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from core.config import Settings
from core.errors import ModelMissing

log = logging.getLogger(__name__)

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def select_providers(requested: list[str] | None = None) -> list[str]:
    """Providers in order of preference, filtered by what this onnxruntime build reports."""
    available = set(ort.get_available_providers())
    wanted = requested or list(PREFERRED_PROVIDERS)
    chosen = [p for p in wanted if p in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class OnnxSession:
    """A loaded model file. `run` is thread-safe (onnxruntime sessions allow concurrent Run)."""

    def __init__(
        self,
        path: Path,
        settings: Settings,
        optimization: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    ) -> None:
        """`optimization` is for benchmarks comparing levels; the service always uses ENABLE_ALL."""
        if not path.is_file():
            raise ModelMissing(f"model file {path.name} is not in {path.parent}; run `make models`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = settings.onnx_intra_op_threads or max(1, (os.cpu_count() or 2) // 2)
        options.inter_op_num_threads = settings.onnx_inter_op_threads
        # Idle threads must sleep, not spin: several sessions share the cores with the API and workers.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Photos come in many sizes; a per-shape memory plan would grow without bound.
        options.enable_mem_pattern = False
        options.graph_optimization_level = optimization
        self.path = path
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=select_providers(settings.onnx_providers)
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        log.info("loaded %s with %s", path.name, self.session.get_providers())

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def run(self, feeds: dict[str, np.ndarray], output_names: list[str] | None = None) -> list[np.ndarray]:
        outputs: list[np.ndarray] = self.session.run(output_names or self.output_names, feeds)
        return outputs


# Keyed by file and the options that shape a session, so two model sets with different settings
# never share a session built for the other.
_SessionKey = tuple[Path, int, int, tuple[str, ...]]
_sessions: dict[_SessionKey, OnnxSession] = {}
_sessions_lock = threading.Lock()


def get_session(file_name: str, settings: Settings) -> OnnxSession:
    """One session per model file (and thread/provider choice) per process, created on first use."""
    path = (settings.model_dir / file_name).absolute()
    key = (
        path,
        settings.onnx_intra_op_threads,
        settings.onnx_inter_op_threads,
        tuple(settings.onnx_providers or ()),
    )
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = OnnxSession(path, settings)
            _sessions[key] = session
        return session
