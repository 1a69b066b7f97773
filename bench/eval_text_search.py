"""Text search quality on a captions set, through the real service over HTTP.

Usage: .venv/bin/python bench/eval_text_search.py DATA_FOLDER [--limit N] [--k 10]

Two rankings side by side on the same analysed photos: the current one (the learned alignment of photos
and sentences blended with the words) and the one before it (words and summaries only,
SHOEBOX_TEXT_SEARCH_LEARNED=false), each through a real service over HTTP.

DATA_FOLDER holds images/ and ground_truth.json ({file name: [captions]}, e.g. ../shared/testdata/captions).
A fresh service gets the images over HTTP and analyses them; then every caption is sent as it is
(`GET /v1/search?q=<caption>`) and the rank of the caption's own photo is recorded. Prints recall@1/5/10
(the share of captions whose photo is in the top k), MRR@10, how often the photo was found through
words vs through meaning alone, and the query latency seen by the client.

The service stores no captions: what it knows of a photo is what the models saw (objects, ImageNet
labels, categories, faces, and the alignment head's sentence-space vector) plus EXIF, so this measures
how far a user's own description gets on that. The head was trained on other Flickr8k photos
(flickr8k_train), none of them in this set, and nothing was chosen on this set.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _service import list_images, running_service, upload_folder, wait_for_analysis

# Matches by meaning as a whole (not a word of the photo's facts).
MEANING_FIELDS = frozenset({"content", "looks_like"})


def run_queries(
    client: httpx.Client, truth: dict[str, list[str]], ids: dict[str, str], k: int
) -> tuple[list[int | None], int, list[float]]:
    """Every caption as a query: rank of its photo (None past k), finds through words, latencies."""
    ranks: list[int | None] = []
    by_words = 0
    latencies: list[float] = []
    for name, captions in truth.items():
        if name not in ids:
            continue
        for caption in captions:
            started = time.perf_counter()
            response = client.get("/v1/search", params={"q": caption, "limit": k})
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            items = response.json()["items"]
            found = [item["photo"]["id"] for item in items]
            rank = found.index(ids[name]) + 1 if ids[name] in found else None
            ranks.append(rank)
            if rank is not None:
                by_words += any(m["field"] not in MEANING_FIELDS for m in items[rank - 1]["matched"])
    return ranks, by_words, latencies


def summarise(ranks: list[int | None], k: int) -> dict[str, float]:
    total = len(ranks)
    out = {f"r@{n}": sum(1 for r in ranks if r is not None and r <= n) / total for n in (1, 5, 10) if n <= k}
    out[f"mrr@{k}"] = sum(1 / r for r in ranks if r) / total
    return out


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("data_folder", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--k", type=int, default=10, help="results asked per query")
    args = parser.parse_args()
    truth: dict[str, list[str]] = json.loads((args.data_folder / "ground_truth.json").read_text())
    paths = [p for p in list_images(args.data_folder / "images", args.limit) if p.name in truth]
    data_dir = Path(tempfile.mkdtemp(prefix="shoebox-eval-text-"))
    results: dict[str, tuple[list[int | None], int, list[float]]] = {}
    try:
        # One analysis, two rankings: the second service reads the first one's database.
        shared = {"SHOEBOX_DATA_DIR": str(data_dir)}
        with running_service(env_overrides=shared) as service:
            started = time.time()
            ids = upload_folder(service.client, paths)
            wait_for_analysis(service.client, expected=len(ids))
            print(f"{len(ids)} photos uploaded and analysed in {time.time() - started:.0f}s", file=sys.stderr)
            results["learned alignment + words (now)"] = run_queries(service.client, truth, ids, args.k)
        before = {**shared, "SHOEBOX_TEXT_SEARCH_LEARNED": "false", "SHOEBOX_RUN_JOB_WORKERS": "false"}
        with running_service(env_overrides=before) as service:
            results["words + summary (before)"] = run_queries(service.client, truth, ids, args.k)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"{sum(len(truth[n]) for n in ids)} captions of {len(ids)} photos, each sent as a query over HTTP")
    header = "".join(f"{f'R@{n}':>8}" for n in (1, 5, 10) if n <= args.k) + f"{f'MRR@{args.k}':>9}"
    print(f"{'ranking':34}{header}   found through words   p50 / p95 ms")
    for what, (ranks, by_words, latencies) in results.items():
        figures = "".join(f"{value:8.3f}" for value in summarise(ranks, args.k).values())
        found = sum(1 for r in ranks if r)
        latencies.sort()
        p50 = statistics.median(latencies)
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        print(f"{what:34}{figures}   {by_words:4d}/{found:<4d}            {p50:5.1f} / {p95:5.1f}")


if __name__ == "__main__":
    main()
