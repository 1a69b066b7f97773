"""Sentence embeddings for text queries (all-MiniLM-L6-v2 on ONNX Runtime).

Same result as sentence-transformers' encode(): tokenise, run the BERT encoder, mean-pool the
hidden states over real tokens (attention mask), L2-normalise. Tokenisation uses the `tokenizers`
library with the model's own tokenizer.json, so no transformers/torch at run time.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from core.config import Settings, get_settings
from core.errors import ModelMissing
from onnx_models.manifest import ModelEntry, load_manifest
from services.inference.runtime import OnnxSession, get_session

log = logging.getLogger(__name__)


class TextEmbedder:
    """`embed(texts)` -> float32 [N, D] unit vectors; batches are padded to their longest text."""

    def __init__(
        self, entry: ModelEntry | None = None, settings: Settings | None = None, max_batch: int = 64
    ) -> None:
        settings = settings or get_settings()
        self.entry = entry or load_manifest().default_for("text")
        self.model_name = self.entry.name
        self.max_batch = max(1, max_batch)
        pp: dict[str, Any] = self.entry.preprocessing
        if pp.get("pooling", "mean") != "mean":
            raise ValueError(f"{self.entry.name}: only mean pooling is implemented")
        self.normalize = bool(pp.get("normalize", True))
        self.max_length = int(pp.get("max_length", 256))
        self.input_names = [spec.name for spec in self.entry.inputs]
        self.output_name = self.entry.outputs[0].name
        self.dim = int(self.entry.outputs[0].shape[-1])
        self.session: OnnxSession = get_session(self.entry.file, settings)
        self.tokenizer = self._load_tokenizer(settings)

    def _load_tokenizer(self, settings: Settings) -> Tokenizer:
        name = next((f for f in self.entry.extra_files if f.endswith(".tokenizer.json")), None)
        if name is None:
            raise ModelMissing(f"manifest entry {self.entry.name} names no .tokenizer.json file")
        path = settings.model_dir / name
        if not path.is_file():
            raise ModelMissing(f"{name} is not in {settings.model_dir}; run `python -m onnx_models.setup`")
        tokenizer = Tokenizer.from_file(str(path))
        # The shipped tokenizer.json pads every text to a fixed 128; pad to the batch's longest
        # instead (less work for short queries) and truncate at the model's max length.
        padding = tokenizer.padding or {}
        pad_token = str(padding.get("pad_token", "[PAD]"))
        pad_id = padding.get("pad_id", tokenizer.token_to_id(pad_token))
        tokenizer.enable_padding(pad_id=int(pad_id or 0), pad_token=pad_token)
        tokenizer.enable_truncation(max_length=self.max_length)
        return tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._embed_batch(texts[i : i + self.max_batch]) for i in range(0, len(texts), self.max_batch)
        ]
        return np.concatenate(parts, axis=0)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        columns = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        feeds = {name: columns[name] for name in self.input_names}
        (hidden,) = self.session.run(feeds, [self.output_name])
        mask = columns["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        if self.normalize:
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)
