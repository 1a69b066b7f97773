"""The search building blocks on their own: normalisation, BM25 index, vector index, places, grouping."""

from itertools import islice

import numpy as np
import pytest

from core.config import Settings
from services.inference.models import ModelSet
from services.search.documents import season
from services.search.duplicates import _components
from services.search.lexical import DocRow, LexicalIndex
from services.search.places import reverse_geocode
from services.search.query import plan_query
from services.search.semantic import Vocabulary
from services.search.text import phrase_term, stem, terms
from services.search.vectors import REDUCE_ABOVE, VectorIndex
from tests.paths import MODEL_DIR


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dogs", ["dog"]),
        ("People on the beaches", ["person", "beach"]),
        ("glasses, buses and boxes", ["glass", "bus", "box"]),
        ("Café in Zürich", ["cafe", "zurich"]),
        ("running puppies", ["run", "puppy"]),
        ("tennis 2014", ["tennis", "2014"]),
        ("a photo of the sea", ["sea"]),
    ],
)
def test_normalisation_folds_case_accents_plurals(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


def test_stemming_is_the_same_on_both_sides() -> None:
    for word in ("horses", "horse", "cats", "skiing", "skis"):
        assert stem(word) == stem(stem(word))
    assert phrase_term("Golden  Retriever") == "~golden retriever"


def test_seasons_follow_the_hemisphere() -> None:
    assert season(7, southern=False) == "summer"
    assert season(7, southern=True) == "winter"
    assert season(12, southern=False) == "winter"
    assert season(4, southern=False) == "spring"


def _doc(photo_id: str, *words: str) -> DocRow:
    return DocRow(photo_id, {w: 1.0 for w in words}, float(len(words)))


def test_bm25_prefers_rare_terms_and_follows_changes() -> None:
    index = LexicalIndex([_doc("a", "dog", "grass"), _doc("b", "dog"), _doc("c", "cat"), _doc("d", "dog")])
    scores = index.score({"dog": 1.0, "grass": 1.0})
    by_id = dict(zip(index.ids, scores.tolist(), strict=True))
    assert by_id["a"] > by_id["b"] > 0 and by_id["c"] == 0
    index.upsert(_doc("c", "cat", "grass"))
    index.remove("a")
    index.upsert(_doc("e", "grass"))
    scores = index.score({"grass": 1.0})
    live = {index.ids[row]: float(scores[row]) for row in np.flatnonzero(scores > 0)}
    assert set(live) == {"c", "e"}
    assert index.live_count == 4 and index.document_frequency("grass") == 2
    assert index.has("cat") and not index.has("zebra")


def test_vector_index_exact_and_reduced_paths_agree_with_brute_force() -> None:
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((REDUCE_ABOVE + 2000, 48)).astype(np.float32)
    vectors = np.maximum(latent @ rng.standard_normal((48, 256)).astype(np.float32), 0) + 0.05
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"p{i:05d}" for i in range(len(vectors))]
    small = VectorIndex("m", 256)
    small.load(zip(ids[:500], vectors[:500], strict=True))
    assert small.basis is None
    big = VectorIndex("m", 256)
    big.load(zip(ids, vectors, strict=True))
    assert big.basis is not None
    hits = 0
    for q in range(20):
        query = vectors[q]
        brute = np.argsort(-(vectors[:500] @ query))[1:11]
        got = [photo_id for photo_id, _ in islice(small.ranked(query, exclude=ids[q]), 10)]
        assert got == [ids[i] for i in brute]
        brute = set(np.argsort(-(vectors @ query))[1:11].tolist())
        got_big = [photo_id for photo_id, _ in islice(big.ranked(query, exclude=ids[q]), 10)]
        hits += len(brute & {int(photo_id[1:]) for photo_id in got_big})
    assert hits / 200 >= 0.95
    big.remove(ids[1])
    assert ids[1] not in [photo_id for photo_id, _ in islice(big.ranked(vectors[1]), 50)]
    assert len(list(big.ranked(vectors[0]))) == len(ids) - 1


def test_duplicate_pairs_group_transitively() -> None:
    groups = _components([("a", "b", 0.9), ("b", "c", 0.95), ("x", "y", 0.99)])
    assert groups == [(["a", "b", "c"], 0.9), (["x", "y"], 0.99)]


def test_reverse_geocoding_offline() -> None:
    paris = reverse_geocode(48.8566, 2.3522)
    assert paris is not None and (paris.city, paris.region, paris.country) == (
        "Paris",
        "Ile-de-France",
        "France",
    )
    tokyo = reverse_geocode(35.6762, 139.6503)
    assert tokyo is not None and tokyo.country == "Japan"
    assert reverse_geocode(0.0, -30.0) is None  # mid-Atlantic: no place is invented
    assert reverse_geocode(None, 2.0) is None


def test_query_words_expand_to_the_vocabulary_by_meaning() -> None:
    text_model = ModelSet(Settings(model_dir=MODEL_DIR)).text
    names = ("dog", "car", "pizza", "tennis racket", "cat")
    vocabulary = Vocabulary([phrase_term(name) for name in names], text_model)
    plan = plan_query("puppy", lambda term: False, vocabulary, text_model)
    assert "~dog" in plan.terms and plan.terms["~dog"] < 1.0
    assert plan.expansions["~dog"].word == "puppy"
    plan = plan_query("automobile", lambda term: False, vocabulary, text_model)
    assert max(plan.expansions.values(), key=lambda e: e.weight).name == "car"
    plan = plan_query("2014", lambda term: False, vocabulary, text_model)
    assert plan.terms == {"2014": 1.0} and not plan.expansions


def test_duplicate_pairs_for_some_photos_match_the_full_computation() -> None:
    rng = np.random.default_rng(1)
    base = rng.random((300, 64)).astype(np.float32) ** 4
    copies = base[:30] + 0.02 * rng.random((30, 64)).astype(np.float32)
    vectors = np.concatenate([base, copies])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"p{i:04d}" for i in range(len(vectors))]
    index = VectorIndex("m", 64)
    index.load(zip(ids, vectors, strict=True))
    every = {(a, b) for a, b, _ in index.pairs_above(0.97)}
    assert {(f"p{i:04d}", f"p{300 + i:04d}") for i in range(30)} <= every
    some = ids[300:310]
    assert {(a, b) for a, b, _ in index.pairs_above(0.97, some)} == {p for p in every if set(p) & set(some)}
    mutations = index.mutations
    index.upsert(ids[0], vectors[0])  # unchanged: nothing to redo
    assert index.mutations == mutations
    index.upsert(ids[0], vectors[1])
    assert index.changed_at[ids[0]] == index.mutations == mutations + 1


def test_best_shot_is_the_best_scored_full_size_copy(tmp_path) -> None:
    """The one best-shot rule: a copy with under half the pixels never wins, however it scores;
    among full-size copies the quality score decides."""
    from core.storage import LocalBlobStore
    from db.models import Photo
    from services.search.duplicates import best_first

    def shot(photo_id: str, width: int, height: int, score: float) -> Photo:
        return Photo(id=photo_id, width=width, height=height, quality_score=score)

    store = LocalBlobStore(tmp_path / "blobs", tmp_path / "cache")
    photos = [
        shot("thumb", 1000, 750, 95.0),
        shot("blurred", 4000, 3000, 40.0),
        shot("sharp", 4000, 3000, 80.0),
    ]
    ordered, rule = best_first(store, photos)
    assert [p.id for p in ordered] == ["sharp", "blurred", "thumb"] and rule == "quality_score"
