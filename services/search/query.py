"""From a user's words to weighted index terms: literal words, whole names, and expansions by meaning."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.errors import ModelMissing
from services.inference.text import TextEmbedder
from services.search.semantic import Expansion, Vocabulary
from services.search.text import METADATA_PREFIX, NAME_PREFIX, PHRASE_PREFIX, STOP_WORDS, stem, words

log = logging.getLogger(__name__)

# A whole tag or name typed as such ("tennis racket", "Madonna") counts on top of its words.
PHRASE_WEIGHT = 1.0
MAX_QUERY_WORDS = 32
MAX_PHRASE_WORDS = 4


@dataclass
class QueryPlan:
    text: str
    terms: dict[str, float] = field(default_factory=dict)
    # index term -> the query word(s) it came from, for `matched`
    origins: dict[str, str] = field(default_factory=dict)
    expansions: dict[str, Expansion] = field(default_factory=dict)
    # Query words found in photos' metadata (dates, places, cameras, file names, people), and the share
    # of the other words: only those are about what is in the picture.
    metadata_words: list[str] = field(default_factory=list)
    content_share: float = 1.0
    # The content words' sentence embedding, compared with each photo's summary.
    sentence_vector: np.ndarray | None = None

    def add(self, term: str, weight: float, origin: str) -> None:
        if weight > self.terms.get(term, 0.0):
            self.terms[term] = weight
            self.origins[term] = origin


def plan_query(
    text: str,
    has_term: Callable[[str], bool],
    vocabulary: Vocabulary | None,
    text_model: TextEmbedder | None,
) -> QueryPlan:
    plan = QueryPlan(text=text)
    all_words = words(text)[:MAX_QUERY_WORDS]
    content = [w for w in all_words if w not in STOP_WORDS]
    for word in content:
        plan.add(stem(word), 1.0, word)
    for size in range(1, min(MAX_PHRASE_WORDS, len(all_words)) + 1):
        for start in range(len(all_words) - size + 1):
            gram = all_words[start : start + size]
            if gram[0] in STOP_WORDS or gram[-1] in STOP_WORDS:
                continue
            phrase = " ".join(gram)
            for prefix in (PHRASE_PREFIX, NAME_PREFIX):
                if has_term(prefix + phrase):
                    plan.add(prefix + phrase, PHRASE_WEIGHT, phrase)
    metadata = {w for w in content if w.isdigit() or has_term(METADATA_PREFIX + stem(w))}
    plan.metadata_words = [w for w in content if w in metadata]
    plan.content_share = 1 - len(plan.metadata_words) / len(content) if content else 0.0
    # Numbers, dates, places and names mean what they say; only content words are expanded by meaning.
    expandable = list(dict.fromkeys(w for w in content if w not in metadata))
    sentence = " ".join(w for w in all_words if w not in metadata)
    if text_model is None:
        return plan
    try:
        # Two runs, not one: a batch is padded to its longest text, and words are short (and cached).
        plan.sentence_vector = text_model.embed([sentence])[0] if expandable else None
        word_vectors = text_model.embed(expandable) if vocabulary is not None and expandable else None
    except ModelMissing as error:
        log.warning("text search without the semantic part: %s", error.detail)
        return plan
    if vocabulary is not None and word_vectors is not None:
        vectors = dict(zip(expandable, word_vectors, strict=True))
        for expansion in vocabulary.expand(vectors):
            if expansion.weight > plan.terms.get(expansion.term, 0.0):
                plan.add(expansion.term, expansion.weight, expansion.word)
                plan.expansions[expansion.term] = expansion
    return plan
