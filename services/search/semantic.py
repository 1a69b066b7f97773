"""Semantic matching with all-MiniLM-L6-v2: query words -> the owner's vocabulary, by meaning.

"puppy" has no posting, but its sentence embedding is close to the one of the label "dog": query
expansion adds such vocabulary entries as extra, weaker query terms. The vocabulary is small (the
tag, label, category and person names in use: hundreds to a few thousand), so comparing a query
with all of it is one small matrix product; embeddings of names and query words are cached.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from core.config import get_settings
from services.inference.text import TextEmbedder
from services.search.text import PHRASE_PREFIX

log = logging.getLogger(__name__)

# Cosine between a query word and a vocabulary name for the name to count as meant by the word,
# and the similarity at which it counts fully. Chosen on the captions set (bench/eval_text_search.py):
# below ~0.5 MiniLM pairs mostly share a topic, not a meaning ("dog" ~ "cat" 0.66 is the exception
# the weight ramp keeps small).
EXPANSION_MIN = 0.55
EXPANSION_FULL = 0.85
EXPANSIONS_PER_WORD = 3
# An expanded term never counts as much as the word itself.
EXPANSION_MAX_WEIGHT = 0.8

_embedder: TextEmbedder | None = None
_embedder_lock = threading.Lock()
_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 50_000


def text_embedder() -> TextEmbedder:
    global _embedder
    with _embedder_lock:
        if _embedder is None:
            # Queries are a few tokens: one thread runs MiniLM 3x faster than two that must sync
            # (measured: 4 ms vs 14 ms for a 3-token query on 2 cores), and leaves a core to the server.
            settings = get_settings().model_copy(update={"onnx_intra_op_threads": 1})
            _embedder = TextEmbedder(settings=settings)
        return _embedder


def embed(texts: list[str]) -> np.ndarray:
    """Unit vectors for texts, through a process-wide LRU cache (names and words repeat a lot)."""
    found: dict[str, np.ndarray] = {}
    with _cache_lock:
        for text in texts:
            vector = _cache.get(text)
            if vector is not None:
                _cache.move_to_end(text)
                found[text] = vector
    missing = [t for t in dict.fromkeys(texts) if t not in found]
    if missing:
        vectors = text_embedder().embed(missing)
        with _cache_lock:
            for text, vector in zip(missing, vectors, strict=True):
                _cache[text] = vector
                found[text] = vector
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([found[t] for t in texts])


@dataclass(frozen=True)
class Expansion:
    term: str  # a phrase term of the index
    name: str  # the vocabulary name it stands for
    word: str  # the query word it came from
    similarity: float
    weight: float


class Vocabulary:
    """The owner's vocabulary names with their embeddings, rebuilt when new names appear."""

    def __init__(self, phrases: list[str]) -> None:
        self.terms = phrases
        self.names = [term[len(PHRASE_PREFIX) :] for term in phrases]
        self.matrix = embed(self.names) if self.names else np.zeros((0, 384), dtype=np.float32)

    def expand(self, word_vectors: dict[str, np.ndarray]) -> list[Expansion]:
        if not self.terms:
            return []
        expansions: list[Expansion] = []
        for word, vector in word_vectors.items():
            similarities = self.matrix @ vector
            best = np.argsort(-similarities)[:EXPANSIONS_PER_WORD]
            for index in best.tolist():
                similarity = float(similarities[index])
                if similarity < EXPANSION_MIN:
                    break
                ramp = min(1.0, (similarity - EXPANSION_MIN) / (EXPANSION_FULL - EXPANSION_MIN))
                weight = EXPANSION_MAX_WEIGHT * (0.25 + 0.75 * ramp)
                expansions.append(Expansion(self.terms[index], self.names[index], word, similarity, weight))
        return expansions
