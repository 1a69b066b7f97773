"""Face recognition end to end through the HTTP API: faces/, faces_lfw/ and kin_fiw/ protocols.

Usage: .venv/bin/python bench/eval_faces.py [--testdata ../shared/testdata] [--seeds 5]
           [--lfw-people 30] [--lfw-singles 100] [--kin-families 6] [--only faces,lfw,kin]

Each data set gets a fresh service (bench/_service.py: the real app over real HTTP, a throw-away
library). Its photos are uploaded and analysed once; each trial then deletes every person, labels the
taught photos with POST /v1/faces/label, runs a recognize job and reads every face back with
GET /v1/faces. A query face is *named* (person set), *suggested* (suggestion set) or *unknown*.
"Named correctly" needs the right name; "strangers unknown" needs neither a name nor a suggestion;
"not named" lets a suggestion through.

* faces/ (all photos): k = 1, 3, 5, 10 photos for every person (closed set); open set: 3 people at
  k = 10, the other 2 never taught; clusters of the unnamed main faces. Main face: the largest.
* faces_lfw/ (subsampled to fit the time budget): --lfw-people people with 6+ photos (seeded) and
  --lfw-singles one-photo people. Each draw teaches 20 of the people with 5 photos; strangers are the
  other people's photos. Main face: the one holding the image centre (LFW is centred).
* kin_fiw/ (--kin-families seeded families with a member of 4+ photos): every such member is taught
  alone with 3 photos; queries are their other photos and every relative's photos. Also reports on
  how many tight crops a face was found (no padding is applied anywhere).

The same draws are also scored with the plain rules on the bare cached embeddings (bench/_face_cache.py,
the service's own pipeline): cosine to the person's centroid >= 0.40, and to the nearest labelled face
>= 0.40. ROC-style plots of the genuine and impostor scores the API reports (the model's probability
that its best candidate is right) go to bench/reports/recognition_*.png.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _face_cache import load_faces
from _service import list_all, list_jobs, running_service, upload_folder, wait_for_analysis

REPO_ROOT = Path(__file__).resolve().parent.parent
REPORTS = REPO_ROOT / "bench" / "reports"
ACTIVE = ("queued", "running")
PLAIN_THRESHOLD = 0.40


def wait_idle(client: httpx.Client, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(job["state"] in ACTIVE for job in list_jobs(client)):
            return
        time.sleep(0.1)
    raise TimeoutError("jobs still running")


def main_faces(
    client: httpx.Client, photo_ids: dict[str, str], central: bool
) -> dict[str, dict[str, Any] | None]:
    """The main face of every photo (None when no face was found): the largest, or with `central`
    the largest of those whose box holds the image centre (else the largest)."""
    result: dict[str, dict[str, Any] | None] = {}
    for name, photo_id in photo_ids.items():
        faces = client.get(f"/v1/photos/{photo_id}/faces").json()["items"]
        pool = faces
        if central:
            pool = [
                f
                for f in faces
                if f["bbox"][0] <= 0.5 <= f["bbox"][0] + f["bbox"][2]
                and f["bbox"][1] <= 0.5 <= f["bbox"][1] + f["bbox"][3]
            ] or faces
        result[name] = max(pool, key=lambda f: f["bbox"][2] * f["bbox"][3]) if pool else None
    return result


def reset_people(client: httpx.Client) -> None:
    for person in list_all(client, "/v1/people", 500):
        client.delete(f"/v1/people/{person['id']}").raise_for_status()
    wait_idle(client)


@dataclass
class Answer:
    state: str  # named | suggested | unknown
    name: str | None  # named or suggested person
    p_best: float  # the model's probability that its best candidate is right


def answers_now(client: httpx.Client) -> dict[str, Answer]:
    out: dict[str, Answer] = {}
    for f in list_all(client, "/v1/faces", 500):
        if f["person"]:
            out[f["id"]] = Answer("named", f["person"]["name"], f["person_confidence"] or 1.0)
        elif f["suggestion"]:
            out[f["id"]] = Answer(
                "suggested", f["suggestion"]["person"]["name"], f["suggestion"]["confidence"]
            )
        else:
            out[f["id"]] = Answer("unknown", None, 0.0)
    return out


@dataclass
class Trial:
    """Per query photo: truth (None when the person was not taught), the API's answer."""

    named_right: list[bool] = field(default_factory=list)  # taught queries
    stranger_unknown: list[bool] = field(default_factory=list)
    stranger_not_named: list[bool] = field(default_factory=list)
    genuine_scores: list[float] = field(default_factory=list)
    impostor_scores: list[float] = field(default_factory=list)
    plain_centroid: tuple[list[bool], list[bool]] = field(default_factory=lambda: ([], []))
    plain_nearest: tuple[list[bool], list[bool]] = field(default_factory=lambda: ([], []))

    def rate(self, values: list[bool]) -> float:
        return float(np.mean(values)) if values else float("nan")


class Bare:
    """The bare cached embeddings of a folder's photos, for the plain rules on the same draws."""

    def __init__(self, folder: Path) -> None:
        cache = load_faces(folder)
        self.index = {f: i for i, f in enumerate(cache.files)}
        self.emb = cache.paddlex
        self.found = cache.found

    def plain(self, taught: dict[str, list[str]], queries: dict[str, str | None]) -> tuple[Trial, Trial]:
        """(centroid rule, nearest-face rule) outcomes; a photo without a face is unknown."""
        people = sorted(taught)
        rows = {p: [self.index[f] for f in taught[p] if self.found[self.index[f]]] for p in people}
        people = [p for p in people if rows[p]]
        cents = np.stack([self.emb[rows[p]].sum(axis=0) for p in people])
        cents /= np.linalg.norm(cents, axis=1, keepdims=True)
        out = (Trial(), Trial())
        for photo, truth in queries.items():
            i = self.index[photo]
            for trial, score in (
                (out[0], self.emb[i] @ cents.T),
                (out[1], np.array([(self.emb[rows[p]] @ self.emb[i]).max() for p in people])),
            ):
                j = int(score.argmax())
                name = people[j] if self.found[i] and score[j] >= PLAIN_THRESHOLD else None
                if truth is None:
                    trial.stranger_unknown.append(name is None)
                else:
                    trial.named_right.append(name == truth)
        return out


def run_trial(
    client: httpx.Client,
    faces: dict[str, dict[str, Any] | None],
    truth: dict[str, str],
    taught: dict[str, list[str]],
    queries: Sequence[str] | None = None,
    bare: Bare | None = None,
) -> Trial:
    """Label the taught photos, recognise, and score the queries' main faces (default: every other photo)."""
    reset_people(client)
    for person, photos in taught.items():
        face_ids = [faces[p]["id"] for p in photos if faces[p] is not None]  # type: ignore[index]
        if face_ids:
            client.post("/v1/faces/label", json={"face_ids": face_ids, "name": person}).raise_for_status()
    wait_idle(client)
    response = client.post("/v1/jobs", json={"type": "recognize"})
    response.raise_for_status()
    wait_idle(client)
    job = client.get(f"/v1/jobs/{response.json()['id']}").json()
    if job["state"] != "succeeded":
        raise RuntimeError(f"recognize job {job['id']} ended {job['state']}: {job.get('errors')}")
    answers = answers_now(client)
    labelled = {p for photos in taught.values() for p in photos}
    photos = [p for p in (queries if queries is not None else truth) if p not in labelled]
    trial = Trial()
    for photo in photos:
        face = faces.get(photo)
        answer = answers.get(face["id"]) if face else None
        answer = answer or Answer("unknown", None, 0.0)
        if truth[photo] in taught:
            trial.named_right.append(answer.state == "named" and answer.name == truth[photo])
            right_candidate = answer.name == truth[photo] or answer.state == "unknown"
            trial.genuine_scores.append(answer.p_best if right_candidate else 0.0)
        else:
            trial.stranger_unknown.append(answer.state == "unknown")
            trial.stranger_not_named.append(answer.state != "named")
            trial.impostor_scores.append(answer.p_best if answer.state != "unknown" else 0.0)
    if bare is not None:
        centroid, nearest = bare.plain(
            taught, {p: (truth[p] if truth[p] in taught else None) for p in photos}
        )
        trial.plain_centroid = (centroid.named_right, centroid.stranger_unknown)
        trial.plain_nearest = (nearest.named_right, nearest.stranger_unknown)
    return trial


def summary(values: list[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    return f"{statistics.mean(values):.3f} (worst {min(values):.3f})"


def protocol_row(name: str, trials: list[Trial], bar: str = "") -> str:
    t = trials[0]
    named = summary([t.rate(x.named_right) for x in trials])
    unknown = summary([t.rate(x.stranger_unknown) for x in trials])
    not_named = summary([t.rate(x.stranger_not_named) for x in trials])
    centroid = summary([t.rate(x.plain_centroid[0]) for x in trials])
    centroid_s = summary([t.rate(x.plain_centroid[1]) for x in trials])
    nearest = summary([t.rate(x.plain_nearest[0]) for x in trials])
    nearest_s = summary([t.rate(x.plain_nearest[1]) for x in trials])
    plain = f"{centroid} / {centroid_s} | {nearest} / {nearest_s}"
    return f"| {name} | {named} | {unknown} | {not_named} | {plain} | {bar} |"


HEADER = [
    "| protocol | named correctly | strangers unknown | strangers not named (suggested ok) | "
    "plain centroid >= 0.40: named / strangers unknown | "
    "plain nearest face >= 0.40: named / strangers unknown | bar |",
    "|---|---|---|---|---|---|---|",
]


def roc_plot(name: str, trials: list[Trial], path: Path) -> None:
    """Genuine vs impostor distribution of the API's p_best, and the share named/let through by threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    genuine = np.concatenate([t.genuine_scores for t in trials]) if trials else np.zeros(0)
    impostor = np.concatenate([t.impostor_scores for t in trials]) if trials else np.zeros(0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    bins = np.linspace(0, 1, 41)
    left.hist(genuine, bins=bins, alpha=0.6, label=f"genuine ({len(genuine)})", density=True)
    left.hist(impostor, bins=bins, alpha=0.6, label=f"impostor ({len(impostor)})", density=True)
    left.set_xlabel("model's P(best candidate is right) (0 for unknown or wrong candidate)")
    left.set_title(f"{name}: score distributions")
    left.legend()
    thresholds = np.linspace(0, 1, 201)
    tpr = [(genuine >= t).mean() if len(genuine) else 0 for t in thresholds]
    fpr = [(impostor >= t).mean() if len(impostor) else 0 for t in thresholds]
    right.plot(fpr, tpr)
    right.set_xscale("symlog", linthresh=1e-3)
    right.set_xlabel("impostors at or above threshold")
    right.set_ylabel("genuine at or above threshold")
    right.set_title(f"{name}: ROC")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    per_person = Counter(person_of_face.values())
    best_share = [max((Counter(c)[p] for c in clustered), default=0) / n for p, n in per_person.items()]
    return {
        "clusters": len(clustered),
        "coverage": placed / len(person_of_face) if person_of_face else 0.0,
        "purity": purity,
        "completeness": statistics.mean(best_share) if best_share else 0.0,
    }


def by_person(truth: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for photo, person in sorted(truth.items()):
        out[person].append(photo)
    return out


@contextmanager
def start_library(
    folder: Path, files: Sequence[str], central: bool
) -> Iterator[tuple[httpx.Client, dict[str, dict[str, Any] | None]]]:
    """A fresh service with these photos uploaded and analysed: (client, main face per photo)."""
    with running_service() as service:
        started = time.perf_counter()
        ids = upload_folder(service.client, [folder / "images" / f for f in files])
        wait_for_analysis(service.client, expected=len(ids))
        faces = main_faces(service.client, ids, central)
        missing = sum(face is None for face in faces.values())
        print(
            f"[{folder.name}] {len(ids)} photos uploaded and analysed in "
            f"{time.perf_counter() - started:.0f} s; "
            f"a face found on {1 - missing / max(len(faces), 1):.3f}",
            flush=True,
        )
        yield service.client, faces


def eval_faces_set(folder: Path, seeds: int, ks: Sequence[int]) -> list[str]:
    truth: dict[str, str] = json.loads((folder / "ground_truth.json").read_text())
    people = by_person(truth)
    bare = Bare(folder)
    lines = ["### faces/ (5 people, all 115 photos)", "", *HEADER]
    with start_library(folder, sorted(truth), central=False) as (client, faces):
        all_trials: list[Trial] = []
        for k in ks:
            trials = []
            for seed in range(seeds):
                rng = random.Random(seed)
                taught = {p: rng.sample(photos, min(k, len(photos) - 1)) for p, photos in people.items()}
                trials.append(run_trial(client, faces, truth, taught, bare=bare))
            bar = {1: ">= 0.97 (mean)", 10: ">= 0.99 (mean)"}.get(k, "")
            lines.append(protocol_row(f"closed, k={k}", trials, bar))
            print(lines[-1], flush=True)
        trials = []
        for seed in range(seeds):
            rng = random.Random(100 + seed)
            chosen = rng.sample(sorted(people), 3)
            taught = {p: rng.sample(people[p], 10) for p in chosen}
            trials.append(run_trial(client, faces, truth, taught, bare=bare))
        all_trials += trials
        lines.append(
            protocol_row("open: 3 taught at k=10, 2 strangers", trials, ">= 0.97 / >= 0.97 (worst draw)")
        )
        print(lines[-1], flush=True)
        clusters = cluster_scores(client, faces, truth)
    roc_plot("faces/ open set", all_trials, REPORTS / "recognition_faces_open.png")
    lines += [
        "",
        f"Clusters of the unnamed main faces: {clusters['clusters']} clusters, "
        f"coverage {clusters['coverage']:.3f}, purity {clusters['purity']:.3f}, "
        f"completeness {clusters['completeness']:.3f} (bar: purity and completeness >= 0.98).",
        "",
        "![faces/ open set](recognition_faces_open.png)",
        "",
    ]
    return lines


def eval_lfw(folder: Path, seeds: int, n_people: int, n_singles: int) -> list[str]:
    truth_all: dict[str, str] = json.loads((folder / "ground_truth.json").read_text())
    people_all = by_person(truth_all)
    rng = random.Random(0)
    multi = rng.sample(sorted(p for p, ph in people_all.items() if len(ph) >= 6), n_people)
    singles = rng.sample(sorted(p for p, ph in people_all.items() if len(ph) == 1), n_singles)
    truth = {ph: p for p in multi + singles for ph in people_all[p]}
    bare = Bare(folder)
    lines = [
        f"### faces_lfw/ ({n_people} people with 6+ photos and {n_singles} with one, "
        f"seeded subsample: {len(truth)} photos)",
        "",
        *HEADER,
    ]
    with start_library(folder, sorted(truth), central=True) as (client, faces):
        trials = []
        for seed in range(seeds):
            r = random.Random(seed)
            taught_people = r.sample(multi, 20)
            taught = {p: r.sample(people_all[p], 5) for p in taught_people}
            trials.append(run_trial(client, faces, truth, taught, bare=bare))
            print(
                f"  draw {seed}: named {trials[-1].rate(trials[-1].named_right):.3f}, strangers unknown "
                f"{trials[-1].rate(trials[-1].stranger_unknown):.3f}",
                flush=True,
            )
        lines.append(protocol_row("20 taught x 5 photos, the rest strangers", trials, ">= 0.95 / >= 0.98"))
    roc_plot("faces_lfw 20x5", trials, REPORTS / "recognition_lfw.png")
    return [*lines, "", "![faces_lfw](recognition_lfw.png)", ""]


def eval_kin(folder: Path, n_families: int) -> list[str]:
    truth_all: dict[str, str] = json.loads((folder / "ground_truth.json").read_text())
    families: dict[str, dict[str, Any]] = json.loads((folder / "families.json").read_text())
    people_all = by_person(truth_all)
    usable = sorted(
        f
        for f, fam in families.items()
        if len(fam["members"]) >= 2 and any(len(people_all[m]) >= 4 for m in fam["members"])
    )
    chosen = random.Random(0).sample(usable, n_families)
    truth = {ph: m for f in chosen for m in families[f]["members"] for ph in people_all[m]}
    lines = [f"### kin_fiw/ ({n_families} seeded families, {len(truth)} crops)", ""]
    own_named: list[bool] = []
    rel_named: list[bool] = []
    rel_suggested: list[bool] = []
    trials: list[Trial] = []
    with start_library(folder, sorted(truth), central=True) as (client, faces):
        found = np.mean([faces[p] is not None for p in truth])
        r = random.Random(1)
        for f in chosen:
            members = list(families[f]["members"])
            for m in members:
                if len(people_all[m]) < 4:
                    continue
                taught = {m: r.sample(people_all[m], 3)}
                relatives = [ph for other in members if other != m for ph in people_all[other]]
                trial = run_trial(client, faces, truth, taught, queries=people_all[m] + relatives)
                trials.append(trial)
                own_named += trial.named_right
                rel_named += [not x for x in trial.stranger_not_named]
                answers = answers_now(client)
                rel_suggested += [
                    (face := faces[ph]) is not None and answers[face["id"]].state == "suggested"
                    for ph in relatives
                ]
    roc_plot("kin_fiw relatives", trials, REPORTS / "recognition_kin.png")
    lines += [
        f"Face found on {found:.3f} of the crops (bar >= 0.90; no padding: YuNet upscales small "
        "photos up to 3x).",
        f"{len(trials)} members taught alone with 3 photos; {len(own_named)} own queries, "
        f"{len(rel_named)} relative queries.",
        "",
        "| measure | value | bar |",
        "|---|---|---|",
        f"| own other photos named | {np.mean(own_named):.3f} | >= 0.80 |",
        f"| relatives not named as them | {1 - np.mean(rel_named):.3f} | >= 0.95 |",
        f"| relatives suggested as them | {np.mean(rel_suggested):.3f} | (suggested is fine) |",
        "",
        "![kin_fiw](recognition_kin.png)",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--testdata", type=Path, default=REPO_ROOT.parent / "shared" / "testdata")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ks", default="1,3,5,10")
    parser.add_argument("--lfw-people", type=int, default=30)
    parser.add_argument("--lfw-singles", type=int, default=100)
    parser.add_argument("--kin-families", type=int, default=6)
    parser.add_argument("--only", default="faces,lfw,kin")
    args = parser.parse_args()
    only = set(args.only.split(","))
    started = time.perf_counter()
    lines = ["## Faces through the HTTP API", ""]
    if "faces" in only:
        lines += eval_faces_set(args.testdata / "faces", args.seeds, [int(k) for k in args.ks.split(",")])
    if "lfw" in only:
        lines += eval_lfw(args.testdata / "faces_lfw", args.seeds, args.lfw_people, args.lfw_singles)
    if "kin" in only:
        lines += eval_kin(args.testdata / "kin_fiw", args.kin_families)
    lines.append(f"Whole run: {time.perf_counter() - started:.0f} s.")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
