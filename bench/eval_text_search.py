"""Text search quality on a captions set, through the real service over HTTP.

Usage: .venv/bin/python bench/eval_text_search.py DATA_FOLDER [--limit N] [--k 10]

DATA_FOLDER holds images/ and ground_truth.json ({file name: [captions]}, e.g. ../shared/testdata/captions).
A fresh service gets the images over HTTP and analyses them; then every caption is sent as it is
(`GET /v1/search?q=<caption>`) and the rank of the caption's own photo is recorded. Prints recall@1/5/10
(the share of captions whose photo is in the top k), MRR@10, how often the photo was found through
words vs through meaning alone, and the query latency seen by the client.

The service stores no captions: what it knows of a photo is what the models saw (objects, ImageNet
labels, categories, faces) plus EXIF, so this measures how far a user's own description gets on that.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _service import list_images, running_service, upload_folder, wait_for_analysis


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("data_folder", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--k", type=int, default=10, help="results asked per query")
    args = parser.parse_args()
    truth: dict[str, list[str]] = json.loads((args.data_folder / "ground_truth.json").read_text())
    paths = [p for p in list_images(args.data_folder / "images", args.limit) if p.name in truth]
    with running_service() as service:
        client = service.client
        started = time.time()
        ids = upload_folder(client, paths)
        wait_for_analysis(client, expected=len(ids))
        print(f"{len(ids)} photos uploaded and analysed in {time.time() - started:.0f}s", file=sys.stderr)
        ranks: list[int | None] = []
        by_words = 0
        latencies: list[float] = []
        for name, captions in truth.items():
            if name not in ids:
                continue
            for caption in captions:
                started = time.perf_counter()
                response = client.get("/v1/search", params={"q": caption, "limit": args.k})
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                found = [item["photo"]["id"] for item in response.json()["items"]]
                rank = found.index(ids[name]) + 1 if ids[name] in found else None
                ranks.append(rank)
                if rank is not None:
                    matched = response.json()["items"][rank - 1]["matched"]
                    by_words += any(m["field"] != "content" for m in matched)
    total = len(ranks)
    print(f"{total} captions of {len(ids)} photos")
    for k in (1, 5, 10):
        if k <= args.k:
            print(f"recall@{k}: {sum(1 for r in ranks if r is not None and r <= k) / total:.3f}")
    print(f"MRR@{args.k}: {sum(1 / r for r in ranks if r) / total:.3f}")
    found_total = sum(1 for r in ranks if r)
    print(f"found through words (not only by meaning): {by_words}/{found_total}")
    latencies.sort()
    print(
        f"query latency: p50 {statistics.median(latencies):.1f} ms, "
        f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.1f} ms"
    )


if __name__ == "__main__":
    main()
