"""Sentence embeddings for text queries (all-MiniLM-L6-v2 on ONNX Runtime).

Same result as sentence-transformers' encode(): tokenise, run the BERT encoder, mean-pool the
hidden states over real tokens (attention mask), L2-normalise. Tokenisation uses the `tokenizers`
library with the model's own tokenizer.json, so no transformers/torch at run time.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Literal

import numpy as np
from tokenizers import Tokenizer

from core.config import Settings
from core.errors import ModelMissing
from onnx_models.manifest import ModelEntry
from services.inference.base import InferenceModel, Preprocessing
from services.inference.runtime import OnnxSession
from services.inference.tensors import l2_normalise

log = logging.getLogger(__name__)

# Names, words and summaries repeat a lot: embeddings are kept in a per-model LRU cache.
CACHE_SIZE = 50_000


class TextPreprocessing(Preprocessing):
    pooling: Literal["mean"] = "mean"
    normalize: bool = True
    max_length: int = 256


class TextEmbedder(InferenceModel):
    """`embed(texts)` -> float32 [N, D] unit vectors; batches are padded to their longest text."""

    role = "text"
    preprocessing_type = TextPreprocessing

    def __init__(self, entry: ModelEntry, settings: Settings, max_batch: int = 64) -> None:
        super().__init__(entry, settings)
        self.max_batch = max(1, max_batch)
        pp = TextPreprocessing.model_validate(entry.preprocessing)
        self.normalize = pp.normalize
        self.max_length = pp.max_length
        self.input_names = [spec.name for spec in entry.inputs]
        self.output_name = entry.outputs[0].name
        self.dim = int(entry.outputs[0].shape[-1])
        self.onnx: OnnxSession = self.session()
        self.tokenizer = self._load_tokenizer(settings)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def warm_up(self) -> None:
        self.embed_uncached(["warm up"])

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
        """Unit vectors for texts, through the model's LRU cache."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        found: dict[str, np.ndarray] = {}
        with self._cache_lock:
            for text in texts:
                vector = self._cache.get(text)
                if vector is not None:
                    self._cache.move_to_end(text)
                    found[text] = vector
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = self.embed_uncached(missing)
            with self._cache_lock:
                for text, vector in zip(missing, vectors, strict=True):
                    self._cache[text] = vector
                    found[text] = vector
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return np.stack([found[t] for t in texts])

    def embed_uncached(self, texts: list[str]) -> np.ndarray:
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
        (hidden,) = self.onnx.run(feeds, [self.output_name])
        mask = columns["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return l2_normalise(pooled) if self.normalize else np.asarray(pooled, dtype=np.float32)
