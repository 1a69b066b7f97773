"""Face recognition end to end through the HTTP API: k labelled photos per person, open set, clusters.

Usage: .venv/bin/python bench/eval_faces.py DATA_FOLDER [--seeds 5] [--ks 1,3,5,10]

DATA_FOLDER holds images/*.jpg and ground_truth.json ({file: person name}); each photo's main person
is its largest face. The service is started fresh, the photos uploaded and analysed once; each trial
then deletes every person, labels k photos per person with POST /v1/faces/label, runs a recognize
job and reads the names back with GET /v1/faces. "Unknown" counts as wrong for a taught person.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import list_images, list_jobs, running_service, upload_folder, wait_for_analysis

ACTIVE = ("queued", "running")


def wait_idle(client: httpx.Client, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(job["state"] in ACTIVE for job in list_jobs(client)):
            return
        time.sleep(0.1)
    raise TimeoutError("jobs still running")


def main_faces(client: httpx.Client, photo_ids: dict[str, str]) -> dict[str, dict[str, Any] | None]:
    """The largest face of every photo (None when no face was found)."""
    result: dict[str, dict[str, Any] | None] = {}
    for name, photo_id in photo_ids.items():
        faces = client.get(f"/v1/photos/{photo_id}/faces").json()["items"]
        result[name] = max(faces, key=lambda f: f["bbox"][2] * f["bbox"][3]) if faces else None
    return result


def reset_people(client: httpx.Client) -> None:
    for person in client.get("/v1/people", params={"limit": 500}).json()["items"]:
        client.delete(f"/v1/people/{person['id']}").raise_for_status()
    wait_idle(client)


def names_now(client: httpx.Client) -> dict[str, str | None]:
    names: dict[str, str | None] = {}
    cursor = None
    while True:
        page = client.get("/v1/faces", params={"limit": 500, **({"cursor": cursor} if cursor else {})}).json()
        names.update({f["id"]: f["person"]["name"] if f["person"] else None for f in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            return names


def run_trial(
    client: httpx.Client,
    faces: dict[str, dict[str, Any] | None],
    truth: dict[str, str],
    taught: dict[str, list[str]],
) -> dict[str, float]:
    """Label the given photos, recognise, and score every other photo's main face."""
    reset_people(client)
    for person, photos in taught.items():
        face_ids = [faces[p]["id"] for p in photos if faces[p] is not None]  # type: ignore[index]
        if face_ids:
            client.post("/v1/faces/label", json={"face_ids": face_ids, "name": person}).raise_for_status()
    wait_idle(client)
    response = client.post("/v1/jobs", json={"type": "recognize"})
    response.raise_for_status()
    wait_idle(client)
    # A failed job would leave the previous names in place and score them silently.
    job = client.get(f"/v1/jobs/{response.json()['id']}").json()
    if job["state"] != "succeeded":
        raise RuntimeError(f"recognize job {job['id']} ended {job['state']}: {job.get('errors')}")
    names = names_now(client)
    labelled = {p for photos in taught.values() for p in photos}
    taught_right = taught_total = stranger_right = stranger_total = 0
    for photo, person in truth.items():
        if photo in labelled:
            continue
        face = faces.get(photo)
        predicted = names.get(face["id"]) if face else None
        if person in taught:
            taught_total += 1
            taught_right += predicted == person
        else:
            stranger_total += 1
            stranger_right += predicted is None
    return {
        "named_correctly": taught_right / taught_total if taught_total else float("nan"),
        "strangers_unknown": stranger_right / stranger_total if stranger_total else float("nan"),
    }


def cluster_scores(
    client: httpx.Client, faces: dict[str, dict[str, Any] | None], truth: dict[str, str]
) -> dict[str, float]:
    reset_people(client)
    clusters = client.get("/v1/faces/clusters").json()["items"]
    person_of_face = {f["id"]: truth[p] for p, f in faces.items() if f is not None}
    clustered = [[person_of_face[i] for i in c["face_ids"] if i in person_of_face] for c in clusters]
    clustered = [c for c in clustered if c]
    placed = sum(len(c) for c in clustered)
    purity = sum(Counter(c).most_common(1)[0][1] for c in clustered) / placed if placed else 0.0
    # Completeness: for each person, the share of their faces in their biggest cluster.
    per_person = Counter(person_of_face.values())
    best_share = [
        max((Counter(c)[person] for c in clustered), default=0) / total
        for person, total in per_person.items()
    ]
    return {
        "clusters": len(clustered),
        "coverage": placed / len(person_of_face) if person_of_face else 0.0,
        "purity": purity,
        "completeness": statistics.mean(best_share) if best_share else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_folder", type=Path)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ks", default="1,3,5,10")
    args = parser.parse_args()
    truth: dict[str, str] = json.loads((args.data_folder / "ground_truth.json").read_text())
    paths = [p for p in list_images(args.data_folder / "images") if p.name in truth]
    by_person: dict[str, list[str]] = defaultdict(list)
    for photo, person in sorted(truth.items()):
        by_person[person].append(photo)

    with running_service() as service:
        client = service.client
        started = time.perf_counter()
        photo_ids = upload_folder(client, paths)
        wait_for_analysis(client, expected=len(photo_ids))
        print(f"uploaded and analysed {len(photo_ids)} photos in {time.perf_counter() - started:.1f} s")
        faces = main_faces(client, photo_ids)
        missing = sum(face is None for face in faces.values())
        print(f"photos with no face found: {missing}")

        rows: list[tuple[str, float, float, float]] = []
        for k in (int(v) for v in args.ks.split(",")):
            scores = []
            for seed in range(args.seeds):
                rng = random.Random(seed)
                # People with fewer than k+1 photos keep one photo to be recognised.
                taught = {p: rng.sample(photos, min(k, len(photos) - 1)) for p, photos in by_person.items()}
                scores.append(run_trial(client, faces, truth, taught)["named_correctly"])
            rows.append((f"k={k}", statistics.mean(scores), min(scores), max(scores)))
            print(
                f"k={k:<3} named correctly {statistics.mean(scores):.3f} (min {min(scores):.3f})", flush=True
            )
        open_taught, open_strangers = [], []
        people = sorted(by_person)
        for seed in range(args.seeds):
            rng = random.Random(100 + seed)
            chosen = rng.sample(people, min(3, len(people) - 1))
            taught = {p: rng.sample(by_person[p], min(10, len(by_person[p]) - 1)) for p in chosen}
            result = run_trial(client, faces, truth, taught)
            open_taught.append(result["named_correctly"])
            open_strangers.append(result["strangers_unknown"])
        clusters = cluster_scores(client, faces, truth)

    print("\n## Faces through the HTTP API")
    print(f"data: {args.data_folder} ({len(truth)} photos, {len(by_person)} people), {args.seeds} draws each")
    print("| protocol | named correctly (mean) | worst draw | best draw | bar |")
    print("|---|---|---|---|---|")
    bars = {"k=1": 0.97, "k=10": 0.99}
    for name, mean, low, high in rows:
        bar = f">= {bars[name]}" if name in bars else ""
        print(f"| {name} | {mean:.3f} | {low:.3f} | {high:.3f} | {bar} |")
    print(
        f"| open set, 3 taught at k=10 | {statistics.mean(open_taught):.3f} | {min(open_taught):.3f} | "
        f"{max(open_taught):.3f} | >= 0.97 |"
    )
    strangers = open_strangers
    print(
        f"| open set: strangers unknown | {statistics.mean(strangers):.3f} | {min(strangers):.3f} | "
        f"{max(strangers):.3f} | >= 0.97 |"
    )
    print(
        f"\nclusters of unnamed main faces: {clusters['clusters']} clusters, "
        f"coverage {clusters['coverage']:.3f}, purity {clusters['purity']:.3f}, "
        f"completeness {clusters['completeness']:.3f}"
    )


if __name__ == "__main__":
    main()
