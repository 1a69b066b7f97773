"""Semantic matching with all-MiniLM-L6-v2: query words -> the owner's vocabulary, by meaning.

"puppy" has no posting, but its sentence embedding is close to the one of the label "dog": query
expansion adds such vocabulary entries as extra, weaker query terms. The vocabulary is small (the
tag, label, category and person names in use: hundreds to a few thousand), so comparing a query
with all of it is one small matrix product; embeddings of names and query words are cached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

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


@dataclass(frozen=True)
class Expansion:
    term: str  # a phrase term of the index
    name: str  # the vocabulary name it stands for
    word: str  # the query word it came from
    similarity: float
    weight: float


class Vocabulary:
    """The owner's vocabulary names with their embeddings, rebuilt when new names appear."""

    def __init__(self, phrases: list[str], text_model: TextEmbedder) -> None:
        self.terms = phrases
        self.names = [term[len(PHRASE_PREFIX) :] for term in phrases]
        self.matrix = text_model.embed(self.names)

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
