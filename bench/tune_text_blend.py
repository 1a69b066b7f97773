"""Choose the text-search blend (learned cosine, summary cosine, words) on the alignment's validation split.

Usage: .venv/bin/python bench/tune_text_blend.py [--photos 500] [--reuse DATA_DIR] [--keep]

The product's caption set (testdata/captions) is never read here: the blend is chosen on photos the
alignment head was not trained on, the held-apart validation split of flickr8k_train
(onnx_models/train_text_alignment.py `is_validation`).

1. The real service (HTTP, uvicorn subprocess) gets N validation photos and analyses them, so the words
   side (BM25 over tags, labels, categories) and the summary vectors are exactly what the service has.
   With --reuse DATA_DIR an earlier run's data directory (--keep) is read instead.
2. In this process, on that database, the service's own search code gives each caption query's
   components for every photo: BM25 and its ceiling, the summary cosine, the query plan's content share,
   and the learned cosine (the query's MiniLM vector against the head's photo vectors, computed with the
   service's ImageTextAligner from the photo's original bytes).
3. Every blend of a small grid is scored like the product bar: each caption against galleries of 100
   photos (the N photos cut into N/100 disjoint galleries). Prints the table and the best blend.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _service import REPO_ROOT, running_service, upload_folder, wait_for_analysis
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from db.models import Photo
from onnx_models.train_text_alignment import DEFAULT_DATA, is_validation, load_captions
from services.inference.models import ModelSet
from services.photos.images import load_oriented
from services.search.index import owner_index
from services.search.query import plan_query

GALLERY = 100
LEARNED_SHARES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
LEXICAL_SHARES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5)


def validation_photos(count: int) -> list[str]:
    captions = load_captions(DEFAULT_DATA)
    return [name for name in sorted(captions) if is_validation(name)][:count]


def components(data_dir: Path, names: list[str]) -> dict[str, np.ndarray]:
    """Per caption query and photo: lexical, ceiling, summary, learned, content share."""
    from core.config import Settings

    engine = create_engine(f"sqlite:///{data_dir / 'shoebox.db'}")
    captions = load_captions(DEFAULT_DATA)
    aligner = ModelSet(Settings(model_dir=REPO_ROOT / "models")).alignment
    with Session(engine) as db:
        photos = list(db.scalars(select(Photo)))
        by_name = {photo.filename: photo for photo in photos}
        owner_id = photos[0].owner_id
        index = owner_index(db, owner_id)
        ordered = [by_name[name] for name in names if name in by_name]
        rows = np.array([index.lexical.rows[photo.id] for photo in ordered])
        blobs = data_dir / "blobs"
        images = [
            load_oriented(next(blobs.rglob(photo.sha256)).read_bytes(), max_side=1280) for photo in ordered
        ]
        learned_vectors = aligner.embed(images)
        queries = [(p, c) for p, photo in enumerate(ordered) for c in captions[photo.filename]]
        out: dict[str, list[np.ndarray | float | int]] = {
            k: [] for k in ("lexical", "summary", "learned", "ceiling", "share", "own")
        }
        started = time.perf_counter()
        for own, caption in queries:
            plan = plan_query(" ".join(caption.split()), index.lexical.has, index.vocabulary())
            lexical = index.lexical.score(plan.terms)[rows]
            summary = (
                index.summary_scores(plan.sentence_vector)[rows]
                if plan.sentence_vector is not None
                else np.zeros(rows.size, np.float32)
            )
            learned = (
                learned_vectors @ plan.sentence_vector
                if plan.sentence_vector is not None
                else np.zeros(rows.size, np.float32)
            )
            out["lexical"].append(lexical)
            out["summary"].append(summary)
            out["learned"].append(learned.astype(np.float32))
            out["ceiling"].append(max(index.lexical.ceiling(plan.terms), 1e-6))
            out["share"].append(plan.content_share)
            out["own"].append(own)
        print(f"{len(queries)} queries scored in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return {key: np.asarray(values) for key, values in out.items()}


def gallery_ranks(scores: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Rank of each query's own photo within its gallery of 100 (photos cut in order); 0-score = absent."""
    ranks = np.empty(own.size)
    for q, photo in enumerate(own):
        start = (photo // GALLERY) * GALLERY
        gallery = scores[q, start : start + GALLERY]
        mine = gallery[photo - start]
        ranks[q] = np.inf if mine <= 0 else 1 + np.sum(gallery > mine)
    return ranks


def blend(
    parts: dict[str, np.ndarray], learned_share: float, lexical_share: float, floor: float
) -> np.ndarray:
    content = learned_share * parts["learned"] + (1 - learned_share) * parts["summary"]
    share = parts["share"][:, None]
    scores = share * np.maximum(content, 0.01) + lexical_share / parts["ceiling"][:, None] * parts["lexical"]
    scores[(parts["lexical"] <= 0) & (content < floor)] = 0.0
    return np.asarray(scores)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--reuse", type=Path, default=None, help="data directory of an earlier --keep run")
    parser.add_argument("--keep", action="store_true", help="keep the service's data directory")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "reports" / "text_blend.json")
    args = parser.parse_args()
    names = validation_photos(args.photos)
    names = names[: len(names) // GALLERY * GALLERY]
    cache = REPO_ROOT / ".export-cache" / f"text_blend_components_{len(names)}.npz"
    if args.reuse is None and cache.is_file():
        with np.load(cache) as stored:
            parts = {key: stored[key] for key in stored.files}
        print(f"components from {cache}", file=sys.stderr)
    elif args.reuse is None:
        images_dir = DEFAULT_DATA / "images"
        with running_service(keep_data=args.keep) as service:
            started = time.time()
            ids = upload_folder(service.client, [images_dir / name for name in names])
            wait_for_analysis(service.client, expected=len(ids))
            print(f"{len(ids)} photos analysed in {time.time() - started:.0f}s", file=sys.stderr)
            parts = components(service.data_dir, names)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **parts)
    else:
        parts = components(args.reuse, names)
    own = parts["own"].astype(int)
    results = []
    content = np.concatenate([parts["learned"][np.arange(own.size), own]])
    for learned_share, lexical_share in itertools.product(LEARNED_SHARES, LEXICAL_SHARES):
        ranks = gallery_ranks(blend(parts, learned_share, lexical_share, floor=0.0), own)
        results.append(
            {
                "learned_share": learned_share,
                "lexical_share": lexical_share,
                **{f"r@{k}": float(np.mean(ranks <= k)) for k in (1, 5, 10)},
            }
        )
    results.sort(key=lambda r: -(r["r@10"] + r["r@1"]))
    print(f"{own.size} caption queries over {len(names) // GALLERY} galleries of {GALLERY} validation photos")
    print("learned  words   R@1    R@5    R@10")
    for row in results[:12]:
        print(
            f"{row['learned_share']:6.2f} {row['lexical_share']:6.2f}  "
            f"{row['r@1']:.3f}  {row['r@5']:.3f}  {row['r@10']:.3f}"
        )
    reference = next(r for r in results if r["learned_share"] == 0.0 and r["lexical_share"] == 0.25)
    top = results[0]["r@10"] + results[0]["r@1"]
    # Captions say nothing about queries of one or two words ("puppy", "Paris 2014"), which need the
    # words: among the blends within noise of the best (0.01 of R@1 + R@10; one query is 0.0007), take
    # the one giving the words the largest share, then the one leaning most on the learned cosine.
    tied = [r for r in results if r["r@10"] + r["r@1"] >= top - 0.01]
    chosen = max(tied, key=lambda r: (r["lexical_share"], r["learned_share"]))
    print(
        f"today's blend (summary only, words 0.25): R@1 {reference['r@1']:.3f} R@10 {reference['r@10']:.3f}"
    )
    best = chosen
    print(
        f"chosen: learned share {best['learned_share']}, words share {best['lexical_share']}: "
        f"R@1 {best['r@1']:.3f} R@5 {best['r@5']:.3f} R@10 {best['r@10']:.3f}"
    )
    # The floor: a photo matching no word comes back only when its content cosine reaches it; as low as
    # keeps 95% of the captions' own photos (a query's own photo is what a floor must not cut).
    quantiles = {q: float(np.quantile(content, q)) for q in (0.01, 0.05, 0.1, 0.25, 0.5)}
    print("learned cosine of a caption with its own photo, quantiles:", json.dumps(quantiles))
    floors = {}
    for floor in (0.0, 0.1, 0.15, 0.2, 0.25, 0.3):
        ranks = gallery_ranks(blend(parts, best["learned_share"], best["lexical_share"], floor), own)
        floors[floor] = {f"r@{k}": float(np.mean(ranks <= k)) for k in (1, 5, 10)}
        print(f"floor {floor:.2f}: R@1 {floors[floor]['r@1']:.3f} R@10 {floors[floor]['r@10']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"grid": results, "chosen": chosen, "floors": floors, "own_cosine_quantiles": quantiles}, indent=1
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
