"""Bare face-recognition evaluation: the face pipeline + services/recognition.py, no HTTP service.

Usage: python bench/eval_recognition_bare.py DATA_FOLDER [--seeds 20] [--open-seeds 10]
           [--sweep] [--baselines] [--compare-flip] [--fit-calibration] [--speed] [--all]

DATA_FOLDER holds images/*.jpg and ground_truth.json ({file: person name}). Each photo's main face
is its largest detected face. A photo where no face is found counts as wrong wherever it is scored.

Protocols (several seeded random draws each):
* closed set, k = 1, 3, 5, 10 labelled photos per person (people with fewer than k+1 photos use all
  but one): share of the other photos whose main face is named correctly ("unknown" is wrong);
* open set: 3 people taught with k = 10, the others never: share of the taught people's other
  photos named correctly, and share of the strangers' photos that come back "unknown";
* calibration: confidence bins against the share of right answers, pooled over all protocols;
* clusters of all main faces (and of all faces, one per photo): purity, completeness, pairwise
  precision and recall, coverage.

The library is used as the service uses it: the labelled main faces train the classifier, every
other recognisable face of the set is the unlabelled pool for self-training, every face of a test
photo is predicted and the photo's predictions go through assign_exclusive.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import homogeneity_completeness_v_measure
from sklearn.svm import LinearSVC

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import get_settings
from onnx_models.manifest import load_manifest
from services.faces.recognition import (
    ACCEPT_SIMILARITY,
    Calibration,
    FaceClassifier,
    Prediction,
    assign_exclusive,
    cluster,
    train,
)
from services.inference.faces import FaceAnalyzer, FaceEmbedder, FaceResult, load_face_detector

K_VALUES = (1, 3, 5, 10)
OPEN_K = 10
OPEN_TAUGHT = 3
MAX_OPEN_COMBOS = 10
CAL_BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001)


@dataclass
class Face:
    photo: int
    embedding: np.ndarray
    area: float
    recognisable: bool


@dataclass
class Dataset:
    files: list[str]
    person: np.ndarray  # [photos] ground-truth name per photo
    faces: list[Face]  # every detected face
    main: np.ndarray  # [photos] index into faces of the photo's main face, -1 when none
    seconds: float

    @property
    def people(self) -> list[str]:
        return sorted(set(self.person.tolist()))

    def embeddings(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        return np.stack([self.faces[i].embedding for i in idx]) if len(idx) else np.zeros((0, 128))


def load(folder: Path, flip_tta: bool = True) -> Dataset:
    gt: dict[str, str] = json.loads((folder / "ground_truth.json").read_text())
    files = sorted(gt)
    images = []
    for name in files:
        with Image.open(folder / "images" / name) as im:
            images.append(ImageOps.exif_transpose(im).convert("RGB"))
    settings = get_settings()
    analyzer = FaceAnalyzer(
        load_face_detector(settings),
        FaceEmbedder(load_manifest().default_for("face_embedding"), settings, flip_tta=flip_tta),
    )
    t0 = time.perf_counter()
    results: list[list[FaceResult]] = analyzer.analyze(images)
    seconds = time.perf_counter() - t0
    faces: list[Face] = []
    main = np.full(len(files), -1, dtype=np.int64)
    for p, per_photo in enumerate(results):
        for r in per_photo:
            faces.append(Face(p, r.embedding, r.detection.area_px, r.quality.recognisable))
        if per_photo:
            start = len(faces) - len(per_photo)
            main[p] = start + int(np.argmax([r.detection.area_px for r in per_photo]))
    return Dataset(files, np.array([gt[f] for f in files]), faces, main, seconds)


# --- one trial: label some photos, predict the others ----------------------------------------------


@dataclass
class Outcome:
    truth: str  # ground-truth person of the photo
    taught: bool  # whether that person was taught
    pred: Prediction | None  # None: no face found in the photo

    @property
    def right(self) -> bool:
        got = self.pred.person_id if self.pred else None
        return got == self.truth if self.taught else got is None

    @property
    def confidence(self) -> float:
        return self.pred.confidence if self.pred else 0.0


def draw(ds: Dataset, taught: Sequence[str], k: int, seed: int) -> np.ndarray:
    """k labelled photos (with a face) per taught person; at least one photo stays for testing."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for person in taught:
        photos = np.flatnonzero((ds.person == person) & (ds.main >= 0))
        n = min(k, len(np.flatnonzero(ds.person == person)) - 1, len(photos))
        chosen.extend(rng.choice(photos, n, replace=False).tolist() if n > 0 else [])
    return np.array(sorted(chosen), dtype=np.int64)


def run_trial(
    ds: Dataset,
    taught: Sequence[str],
    labelled: np.ndarray,
    train_fn: Callable[..., FaceClassifier] = train,
    **train_kwargs: object,
) -> list[Outcome]:
    lab_faces = ds.main[labelled]
    lab_photos = set(labelled.tolist())
    # The unlabelled pool is every other recognisable face of the set, test faces included: the
    # recognize job has the whole library at hand.
    taken = set(lab_faces.tolist())
    pool = [i for i, f in enumerate(ds.faces) if f.recognisable and i not in taken]
    clf = train_fn(
        ds.embeddings(lab_faces), ds.person[labelled].tolist(), unlabelled=ds.embeddings(pool), **train_kwargs
    )
    test_photos = [p for p in range(len(ds.files)) if p not in lab_photos]
    test_faces = [i for i, f in enumerate(ds.faces) if f.photo not in lab_photos]
    preds = clf.predict(ds.embeddings(test_faces)) if test_faces else []
    by_photo: dict[int, list[tuple[int, Prediction]]] = {}
    for i, pred in zip(test_faces, preds, strict=True):
        by_photo.setdefault(ds.faces[i].photo, []).append((i, pred))
    resolved: dict[int, Prediction] = {}
    for items in by_photo.values():
        resolved.update(assign_exclusive(items))
    taught_set = set(taught)
    return [
        Outcome(str(ds.person[p]), ds.person[p] in taught_set, resolved.get(int(ds.main[p])))
        for p in test_photos
    ]


def closed_set(ds: Dataset, k: int, seeds: int, **kw: object) -> list[list[Outcome]]:
    return [run_trial(ds, ds.people, draw(ds, ds.people, k, s), **kw) for s in range(seeds)]


def open_combos(ds: Dataset) -> list[tuple[str, ...]]:
    combos = list(itertools.combinations(ds.people, OPEN_TAUGHT)) if len(ds.people) > OPEN_TAUGHT else []
    if len(combos) > MAX_OPEN_COMBOS:
        rng = np.random.default_rng(0)
        combos = [combos[i] for i in sorted(rng.choice(len(combos), MAX_OPEN_COMBOS, replace=False))]
    return combos


def open_set(ds: Dataset, seeds: int, k: int = OPEN_K, **kw: object) -> list[list[Outcome]]:
    return [
        run_trial(ds, taught, draw(ds, taught, k, s), **kw)
        for taught in open_combos(ds)
        for s in range(seeds)
    ]


def named_rate(trials: list[list[Outcome]]) -> tuple[float, float, float]:
    """Mean, min and max over draws of the share of taught faces named correctly."""
    rates = [np.mean([o.right for o in t if o.taught]) for t in trials if any(o.taught for o in t)]
    return float(np.mean(rates)), float(np.min(rates)), float(np.max(rates))


def stranger_rate(trials: list[list[Outcome]]) -> tuple[float, float, float]:
    rates = [np.mean([o.right for o in t if not o.taught]) for t in trials if any(not o.taught for o in t)]
    return float(np.mean(rates)), float(np.min(rates)), float(np.max(rates))


def ece(outcomes: list[Outcome]) -> float:
    conf = np.array([o.confidence for o in outcomes])
    right = np.array([o.right for o in outcomes])
    bins = np.digitize(conf, CAL_BINS[1:-1])
    return float(
        sum(abs(conf[bins == b].mean() - right[bins == b].mean()) * (bins == b).mean() for b in set(bins))
    )


def calibration_table(outcomes: list[Outcome], title: str) -> list[str]:
    conf = np.array([o.confidence for o in outcomes])
    right = np.array([o.right for o in outcomes])
    lines = [
        f"{title} (n={len(outcomes)}, ECE {ece(outcomes):.3f})",
        "",
        "| confidence | n | mean conf | right |",
    ]
    lines.append("|---|---|---|---|")
    for lo, hi in itertools.pairwise(CAL_BINS):
        m = (conf >= lo) & (conf < hi)
        if m.any():
            lines.append(
                f"| {lo:.2f}-{min(hi, 1):.2f} | {m.sum()} | {conf[m].mean():.3f} | {right[m].mean():.3f} |"
            )
    return [*lines, ""]


# --- clusters -------------------------------------------------------------------------------------


def cluster_metrics(labels_true: np.ndarray, groups: list[list[int]]) -> dict[str, float]:
    n = len(labels_true)
    assign = -np.arange(1, n + 1)  # noise: each face its own singleton
    for c, g in enumerate(groups):
        assign[g] = c
    in_group = assign >= 0
    purity = (
        sum(Counter(labels_true[g].tolist()).most_common(1)[0][1] for g in groups) / in_group.sum()
        if groups
        else 1.0
    )
    homogeneity, completeness, _ = homogeneity_completeness_v_measure(labels_true, assign)
    iu = np.triu_indices(n, 1)
    same_c = (assign[:, None] == assign[None, :])[iu]
    same_t = (labels_true[:, None] == labels_true[None, :])[iu]
    tp = (same_c & same_t).sum()
    return {
        "clusters": len(groups),
        "coverage": float(in_group.mean()),
        "purity": float(purity),
        "homogeneity": float(homogeneity),
        "completeness": float(completeness),
        "pair_precision": float(tp / max(same_c.sum(), 1)),
        "pair_recall": float(tp / max(same_t.sum(), 1)),
    }


def cluster_report(ds: Dataset) -> list[str]:
    lines = [
        "## Clusters",
        "",
        "| faces | clusters | coverage | purity | homogeneity | completeness | pair P | pair R |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|")
    main = ds.main[ds.main >= 0]
    truth_main = ds.person[ds.main >= 0]
    # All faces: background faces are their own (unknown) identities.
    all_truth = np.array(
        [str(ds.person[f.photo]) if ds.main[f.photo] == i else f"other-{i}" for i, f in enumerate(ds.faces)]
    )
    rec = np.array([f.recognisable for f in ds.faces])
    photos = [f.photo for f in ds.faces]
    cases = [
        ("main faces", ds.embeddings(main), truth_main, None),
        ("all faces, one per photo", ds.embeddings(range(len(ds.faces))), all_truth, photos),
        (
            "recognisable faces, one per photo",
            ds.embeddings(np.flatnonzero(rec)),
            all_truth[rec],
            [p for p, r in zip(photos, rec, strict=True) if r],
        ),
    ]
    for name, emb, truth, photo_ids in cases:
        groups = cluster(emb, min_size=2, photo_ids=photo_ids)
        m = cluster_metrics(truth, groups)
        lines.append(
            f"| {name} ({len(emb)}) | {m['clusters']} | {m['coverage']:.3f} | {m['purity']:.3f} | "
            f"{m['homogeneity']:.3f} | {m['completeness']:.3f} | {m['pair_precision']:.3f} | "
            f"{m['pair_recall']:.3f} |"
        )
    return [*lines, ""]


# --- explorations ---------------------------------------------------------------------------------


def impostor_quantiles(ds: Dataset, n: int = 10, draws: int = 4000) -> list[str]:
    """99.9th percentile of the top-2 evidence score of a face against n faces of another person,
    from all people and leaving each person out in turn (how stable the threshold is)."""
    idx = np.flatnonzero(ds.main >= 0)
    x = ds.embeddings(ds.main[idx])
    who = ds.person[idx]
    sims = x @ x.T
    rng = np.random.default_rng(0)

    def quantiles(keep: np.ndarray) -> tuple[float, float]:
        imp, gen = [], []
        people = sorted(set(who[keep].tolist()))
        for _ in range(draws):
            q = rng.choice(np.flatnonzero(keep))
            other = rng.choice([p for p in people if p != who[q]])
            cand = np.flatnonzero(keep & (who == other))
            pick = rng.choice(cand, min(n, len(cand)), replace=False)
            imp.append(np.sort(sims[q, pick])[::-1][:2].mean())
            own = np.flatnonzero(keep & (who == who[q]))
            own = own[own != q]
            pick = rng.choice(own, min(n, len(own)), replace=False)
            gen.append(np.sort(sims[q, pick])[::-1][:2].mean())
        return float(np.percentile(imp, 99.9)), float(np.mean(np.array(gen) < ACCEPT_SIMILARITY))

    lines = [
        f"Impostor evidence score (face vs {n} faces of another person), 99.9th percentile, and the share",
        f"of genuine scores (vs {n} faces of its own person) below ACCEPT_SIMILARITY = {ACCEPT_SIMILARITY}:",
        "",
        "| people used | impostor p99.9 | genuine below threshold |",
        "|---|---|---|",
    ]
    q, g = quantiles(np.ones(len(idx), dtype=bool))
    lines.append(f"| all | {q:.3f} | {g:.3f} |")
    for p in ds.people:
        q, g = quantiles(who != p)
        lines.append(f"| all but {p} | {q:.3f} | {g:.3f} |")
    return [*lines, ""]


def baselines(ds: Dataset, seeds: int) -> list[str]:
    """Closed-set ranking rules without any rejection (which rule orders people best)."""
    idx = np.flatnonzero(ds.main >= 0)
    lines = [
        "| k | 1-NN (max) | top-2 mean | centroid | LogisticRegression | LinearSVC |",
        "|---|---|---|---|---|---|",
    ]
    for k in K_VALUES:
        acc: dict[str, list[float]] = {m: [] for m in ("max", "top2", "centroid", "lr", "svc")}
        for s in range(seeds):
            lab = draw(ds, ds.people, k, s)
            test = np.setdiff1d(idx, lab)
            xl, yl = ds.embeddings(ds.main[lab]), ds.person[lab]
            xt, yt = ds.embeddings(ds.main[test]), ds.person[test]
            sims = xt @ xl.T
            people = sorted(set(yl.tolist()))
            top1 = np.stack([sims[:, yl == p].max(axis=1) for p in people], axis=1)
            top2 = np.stack(
                [np.sort(sims[:, yl == p], axis=1)[:, ::-1][:, :2].mean(axis=1) for p in people], axis=1
            )
            cent = np.stack([xl[yl == p].mean(axis=0) for p in people])
            cent /= np.linalg.norm(cent, axis=1, keepdims=True)
            names = np.array(people)
            acc["max"].append(float(np.mean(names[top1.argmax(1)] == yt)))
            acc["top2"].append(float(np.mean(names[top2.argmax(1)] == yt)))
            acc["centroid"].append(float(np.mean(names[(xt @ cent.T).argmax(1)] == yt)))
            if k > 1:
                acc["lr"].append(
                    float(np.mean(LogisticRegression(C=10, max_iter=2000).fit(xl, yl).predict(xt) == yt))
                )
                acc["svc"].append(float(np.mean(LinearSVC(C=1.0).fit(xl, yl).predict(xt) == yt)))
        cells = [f"{np.mean(v):.3f}" if v else "n/a" for v in acc.values()]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def headline(ds: Dataset, seeds: int, open_seeds: int, **kw: object) -> dict[str, float]:
    out = {f"k{k}": named_rate(closed_set(ds, k, seeds, **kw))[0] for k in K_VALUES}
    if open_combos(ds):
        trials = open_set(ds, open_seeds, **kw)
        out["open_taught"] = named_rate(trials)[0]
        out["open_strangers"] = stranger_rate(trials)[0]
    return out


def fmt_headline(name: str, h: dict[str, float]) -> str:
    cells = [
        f"{h.get(key, float('nan')):.3f}"
        for key in ("k1", "k3", "k5", "k10", "open_taught", "open_strangers")
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


HEADLINE_HEADER = [
    "| variant | k=1 | k=3 | k=5 | k=10 | open: taught named | open: strangers unknown |",
    "|---|---|---|---|---|---|---|",
]


def fit_default_calibration(ds: Dataset, seeds: int, open_seeds: int) -> Calibration:
    """Refit DEFAULT_CALIBRATION: (evidence score, margin, correct) of every prediction's top
    candidate over all protocols, the classifiers using default calibration only."""
    score, margin, right = [], [], []
    trials = [t for k in K_VALUES for t in closed_set(ds, k, seeds, fit_calibration=False)]
    trials += open_set(ds, open_seeds, fit_calibration=False)
    for t in trials:
        for o in t:
            if o.pred is None or not o.pred.candidates:
                continue
            c = o.pred.candidates
            score.append(c[0].score)
            margin.append(c[0].score - max((x.score for x in c[1:]), default=-np.inf))
            right.append(o.taught and c[0].person_id == o.truth)
    m = np.array(margin)
    m = np.where(np.isfinite(m), m, 1.0)
    return Calibration.fit(np.array(score), m, np.array(right))


def speed() -> list[str]:
    """Timing on synthetic unit vectors: 100 people x 10 labelled faces, 10 000 faces to name."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(100, 128))
    lab = np.repeat(np.arange(100), 10)
    x = centres[lab] + rng.normal(size=(1000, 128)) * 1.2
    q = centres[rng.integers(0, 100, 10_000)] + rng.normal(size=(10_000, 128)) * 1.2
    ids = [f"p{i}" for i in lab]
    t0 = time.perf_counter()
    clf = train(x, ids)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    clf.predict(q)
    t_pred = time.perf_counter() - t0
    t0 = time.perf_counter()
    train(x, ids, unlabelled=q)
    t_self = time.perf_counter() - t0
    t0 = time.perf_counter()
    cluster(q[:5000])
    t_clu = time.perf_counter() - t0
    return [
        "| step | seconds |",
        "|---|---|",
        f"| train, 1 000 labelled faces of 100 people | {t_train:.3f} |",
        f"| predict 10 000 faces | {t_pred:.3f} |",
        f"| train with a 10 000-face unlabelled pool (self-training) | {t_self:.3f} |",
        f"| cluster 5 000 faces | {t_clu:.3f} |",
        "",
    ]


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_folder", type=Path)
    parser.add_argument("--seeds", type=int, default=20, help="random draws per closed-set k")
    parser.add_argument("--open-seeds", type=int, default=10, help="random draws per open-set combination")
    parser.add_argument(
        "--sweep", action="store_true", help="acceptance threshold and self-training ablations"
    )
    parser.add_argument("--baselines", action="store_true", help="closed-set ranking rules compared")
    parser.add_argument(
        "--compare-flip", action="store_true", help="embeddings without flip augmentation too"
    )
    parser.add_argument("--fit-calibration", action="store_true", help="refit the default calibration")
    parser.add_argument("--speed", action="store_true", help="train/predict/cluster timings (synthetic)")
    parser.add_argument("--all", action="store_true", help="everything above")
    args = parser.parse_args()
    if args.all:
        args.sweep = args.baselines = args.compare_flip = args.fit_calibration = args.speed = True

    ds = load(args.data_folder)
    n_main = int((ds.main >= 0).sum())
    out = [
        "# Face recognition, bare (pipeline + services/recognition.py)",
        "",
        f"{len(ds.files)} photos of {len(ds.people)} people, {len(ds.faces)} faces detected, main face found "
        f"in {n_main}; {sum(not f.recognisable for f in ds.faces)} faces flagged not recognisable "
        f"(of them {sum(not ds.faces[i].recognisable for i in ds.main if i >= 0)} main faces). "
        f"Face pipeline {ds.seconds:.1f} s.",
        "",
        f"Closed set: {args.seeds} draws per k. Open set: {OPEN_TAUGHT} people taught with k={OPEN_K}, "
        f"{len(open_combos(ds))} combinations x {args.open_seeds} draws. Mean over draws (min-max).",
        "",
        "## Named correctly",
        "",
        "| protocol | named correctly | strangers unknown |",
        "|---|---|---|",
    ]
    pooled: list[Outcome] = []
    per_protocol: list[tuple[str, list[Outcome]]] = []
    for k in K_VALUES:
        trials = closed_set(ds, k, args.seeds)
        mean, lo, hi = named_rate(trials)
        out.append(f"| closed set, k={k} | {mean:.3f} ({lo:.3f}-{hi:.3f}) | |")
        flat = [o for t in trials for o in t]
        pooled += flat
        per_protocol.append((f"closed k={k}", flat))
    if open_combos(ds):
        trials = open_set(ds, args.open_seeds)
        mean, lo, hi = named_rate(trials)
        smean, slo, shi = stranger_rate(trials)
        out.append(
            f"| open set, {OPEN_TAUGHT} taught (k={OPEN_K}) | {mean:.3f} ({lo:.3f}-{hi:.3f}) | "
            f"{smean:.3f} ({slo:.3f}-{shi:.3f}) |"
        )
        flat = [o for t in trials for o in t]
        pooled += flat
        per_protocol.append((f"open set k={OPEN_K}", flat))
        trials1 = open_set(ds, max(1, args.open_seeds // 2), k=1)
        mean, lo, hi = named_rate(trials1)
        smean, slo, shi = stranger_rate(trials1)
        out.append(
            f"| open set, {OPEN_TAUGHT} taught (k=1) | {mean:.3f} ({lo:.3f}-{hi:.3f}) | "
            f"{smean:.3f} ({slo:.3f}-{shi:.3f}) |"
        )
    out += ["", "## Calibration", ""]
    out += calibration_table(pooled, "All protocols pooled, every answer (a name or unknown)")
    named = [o for o in pooled if o.pred is not None and o.pred.person_id is not None]
    out += calibration_table(named, "Named faces only (confidence = P(named person is right))")
    out.append("ECE per protocol: " + ", ".join(f"{n} {ece(o):.3f}" for n, o in per_protocol))
    out.append("")
    out += cluster_report(ds)
    out += ["## Threshold stability", "", *impostor_quantiles(ds)]

    if args.sweep:
        out += ["## Ablations", "", *HEADLINE_HEADER]
        for t in (0.22, 0.25, ACCEPT_SIMILARITY, 0.30, 0.33):
            out.append(
                fmt_headline(
                    f"accept {t:.2f}",
                    headline(ds, args.seeds // 2, args.open_seeds // 2, accept_similarity=t),
                )
            )
        out.append(
            fmt_headline(
                "no self-training",
                headline(ds, args.seeds // 2, args.open_seeds // 2, self_training_rounds=0),
            )
        )
        out.append(
            fmt_headline(
                "self-training 1 round",
                headline(ds, args.seeds // 2, args.open_seeds // 2, self_training_rounds=1),
            )
        )
        out.append(
            fmt_headline(
                "default calibration only",
                headline(ds, args.seeds // 2, args.open_seeds // 2, fit_calibration=False),
            )
        )
        out.append("")
        # User-fitted vs default calibration: ECE.
        for name, kw in (
            ("default calibration", {"fit_calibration": False}),
            ("user-refitted calibration", {}),
        ):
            trials = [t for k in (5, 10) for t in closed_set(ds, k, args.seeds // 2, **kw)]
            trials += open_set(ds, args.open_seeds // 2, **kw)
            out.append(f"ECE at k=5/10 + open set, {name}: {ece([o for t in trials for o in t]):.3f}")
        out.append("")
    if args.baselines:
        out += ["## Ranking rules, closed set, no rejection", "", *baselines(ds, args.seeds)]
    if args.compare_flip:
        flat_ds = load(args.data_folder, flip_tta=False)
        out += ["## Flip test-time augmentation", "", *HEADLINE_HEADER]
        out.append(fmt_headline("flip TTA on (default)", headline(ds, args.seeds // 2, args.open_seeds // 2)))
        out.append(fmt_headline("flip TTA off", headline(flat_ds, args.seeds // 2, args.open_seeds // 2)))
        out.append("")
    if args.fit_calibration:
        cal = fit_default_calibration(ds, args.seeds, args.open_seeds)
        out += [
            "## Calibration refit",
            "",
            f"DEFAULT_CALIBRATION = ({cal.a:.1f}, {cal.b:.1f}, {cal.c:.1f})",
            "",
        ]
    if args.speed:
        out += ["## Speed (2-core CPU, synthetic embeddings)", "", *speed()]
    print("\n".join(out))


if __name__ == "__main__":
    main()
