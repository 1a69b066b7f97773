"""Text normalisation shared by documents and queries: fold case and accents, split, drop stop words, stem.

The stemmer is deliberately light (plurals, -ing, -ed, a few irregular nouns): photo vocabulary is
nouns and short phrases, where a full Porter stemmer conflates too much ("news" / "new").
Both sides go through the same function, so whatever it does, "Dogs" finds "dog".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9]+")
# A tag, label or category name kept whole, so query expansion can point at one vocabulary entry;
# person and place names are kept whole too, under their own prefix (matched literally, never expanded).
PHRASE_PREFIX = "~"
NAME_PREFIX = "@"
# Marks a word that occurs in a photo's metadata (date, place, camera, file name, person).
METADATA_PREFIX = "^"

STOP_WORDS = frozenset(
    (
        "a", "an", "and", "are", "as", "at", "be", "been", "being", "by", "for", "from", "has", "have",
        "in", "into", "is", "it", "its", "of", "on", "onto", "or", "over", "out", "the", "their",
        "there", "these", "they", "this", "those", "to", "under", "up", "with", "while", "who", "whom",
        "which", "what", "where", "when", "his", "her", "him", "she", "he", "them", "we", "us", "our",
        "you", "your", "i", "me", "my", "some", "something", "very", "just", "near", "next", "behind",
        "front", "top", "each", "other", "another", "one", "two", "three", "four", "five", "several",
        "many", "few", "photo", "photos", "picture", "pictures", "image", "images", "pic", "shot",
        "shots", "taken",
    )
)  # fmt: skip

_IRREGULAR = {
    "people": "person",
    "persons": "person",
    "men": "man",
    "women": "woman",
    "children": "child",
    "kids": "kid",
    "mice": "mouse",
    "geese": "goose",
    "feet": "foot",
    "teeth": "tooth",
    "knives": "knife",
    "wolves": "wolf",
    "leaves": "leaf",
    "shelves": "shelf",
    "loaves": "loaf",
    "dice": "die",
    "oxen": "ox",
    "skis": "ski",
    "glasses": "glass",
    "buses": "bus",
    "busses": "bus",
    "boxes": "box",
    "benches": "bench",
    "dishes": "dish",
    "watches": "watch",
    "beaches": "beach",
    "churches": "church",
    "sandwiches": "sandwich",
    "matches": "match",
    "clothes": "clothes",
    "jeans": "jeans",
    "news": "news",
    "species": "species",
    "series": "series",
    "dress": "dress",
    "grass": "grass",
    "bus": "bus",
    "gas": "gas",
    "glass": "glass",
    "lens": "lens",
    "canvas": "canvas",
    "ios": "ios",
    "tennis": "tennis",
    "christmas": "christmas",
    "paris": "paris",
}


def fold(text: str) -> str:
    """Lower case without accents: "Café Zürich" -> "cafe zurich"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.isdigit() or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        return _undouble(word[:-3])
    if word.endswith("ed") and len(word) > 4:
        return _undouble(word[:-2])
    return word


def _undouble(word: str) -> str:
    # running -> runn -> run; but keep "ll"/"ss" endings (smelling -> smell).
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Folded alphanumeric words in order, stop words included (display and phrase matching)."""
    return _WORD.findall(fold(text))


def terms(text: str) -> list[str]:
    """Index terms of a text: folded, split, stop words dropped, stemmed."""
    return [stem(word) for word in words(text) if word not in STOP_WORDS]


def phrase_term(name: str, prefix: str = PHRASE_PREFIX) -> str:
    """The one term a whole name indexes under (`Golden Retriever` -> `~golden retriever`)."""
    return prefix + " ".join(words(name))
