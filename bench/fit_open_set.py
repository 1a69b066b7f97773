"""Fit the open-set face decision on bare embeddings with person-disjoint cross-validation.

Usage: .venv/bin/python bench/fit_open_set.py [--testdata ../shared/testdata] [--folds 5] [--draws 10]
           [--embedders paddlex,foamliu,fused]

Embeddings come from bench/_face_cache.py (the service's own YuNet + MobileFaceNet pipeline, cached
under .export-cache/faces). No HTTP here: this script chooses the thresholds of the open-set decision
(`decide` in the recognition module) and says how well they transfer to people they were not fitted on.

faces_lfw: the people with 5+ photos are dealt into --folds folds by identity (the 600 people with one
photo too). For each fold the thresholds are fitted on trials drawn from the other folds' people only,
then scored on trials drawn from the held-out fold's people: T taught people x k labelled photos,
strangers = every other person of that fold, every unlabelled photo of the fold in the library (the
self-training pool). The figures printed are held-out figures. The shipped thresholds are the same
fit on all dev LFW people. faces/ and kin_fiw/ are never used for fitting, only reported.

Fitting rule (no tuning on reported figures): per number of taught people T, the name bar is the
(1 - TARGET_NAMED) quantile and the suggestion bar the (1 - TARGET_SUGGESTED) quantile of the best
normalised score strangers get (k = 1, 3, 5 pooled); the name bar's floor is the
(1 - TARGET_RELATIVES_NAMED) quantile of kin_fiw relatives' scores (fitted on one half of the
families, reported on the other; the LFW cross-validation uses the floor fitted on all kin families,
which are other people).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _face_cache import REPO_ROOT, FaceSet, load_faces

from services.faces.recognition import Bars, FaceState, cluster_evidence, decide

FIT_TAUGHT = (1, 2, 3, 5, 10, 20, 50)  # numbers of taught people a bar is fitted for
FIT_KS = (1, 3, 5)  # labelled photos per person in the fitting trials (LFW people have 5-10 photos)
TARGET_NAMED = 0.004  # share of strangers named, per face, on the fitting people
TARGET_SUGGESTED = 0.01  # share of strangers at least suggested (0.015 left 0.981 strictly unknown)
TARGET_RELATIVES_NAMED = 0.03  # share of a taught person's relatives named as them
TARGET_VOUCHED_STRANGERS = 0.001  # share of strangers self-training may name, on the fitting people
STRENGTH_GRID = tuple(round(0.05 * i, 2) for i in range(20))
SUPPORT_GRID = (-1.0, 0.2, 0.25, 0.3, 0.35, 0.4)
FLOOR_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
NAMED = FaceState.NAMED.value
SUGGESTED = FaceState.SUGGESTED.value
UNKNOWN = FaceState.UNKNOWN.value
NEVER = Bars(name={1: np.inf}, suggest={1: np.inf}, self_training=False)

Embedder = Callable[[FaceSet], np.ndarray]
EMBEDDERS: dict[str, Embedder] = {
    "paddlex": lambda fs: fs.paddlex,
    "foamliu": lambda fs: fs.foamliu,
    # Fusion: the cosine of the concatenated unit vectors is the mean of the two models' cosines.
    "fused": lambda fs: np.concatenate([fs.paddlex, fs.foamliu], axis=1) / np.sqrt(2.0),
}


@dataclass
class Library:
    emb: np.ndarray  # [N, D] main face of every photo with a face
    person: np.ndarray  # [N] identity

    def of(self, people: np.ndarray) -> Library:
        mask = np.isin(self.person, people)
        return Library(self.emb[mask], self.person[mask])


@dataclass
class Outcome:
    """One trial: per query, its truth and the decision."""

    genuine: np.ndarray  # query's person was taught
    right_person: np.ndarray  # candidate is the query's own person
    state: np.ndarray
    score: np.ndarray

    def named_rate(self) -> float:
        return float(np.mean((self.state == NAMED)[self.genuine] & self.right_person[self.genuine]))

    def stranger_unknown(self) -> float:
        return float(np.mean(self.state[~self.genuine] == UNKNOWN))

    def stranger_not_named(self) -> float:
        return float(np.mean(self.state[~self.genuine] != NAMED))


def run_trial(lib: Library, taught: np.ndarray, k: int, rng: np.random.Generator, bars: Bars) -> Outcome:
    """Teach `taught` with k random photos each; every other photo of the library is judged (and is
    the cohort)."""
    labelled: list[int] = []
    label_person: list[int] = []
    for j, p in enumerate(taught):
        labelled.extend(rng.choice(np.flatnonzero(lib.person == p), k, replace=False).tolist())
        label_person.extend([j] * k)
    rest = np.setdiff1d(np.arange(len(lib.person)), labelled)
    d = decide(lib.emb[labelled], np.array(label_person), lib.emb[rest], bars=bars)
    cand = np.where(d.person >= 0, taught[np.maximum(d.person, 0)], "")
    return Outcome(np.isin(lib.person[rest], taught), cand == lib.person[rest], d.state, d.score)


def eligible(lib: Library, k: int) -> np.ndarray:
    names, counts = np.unique(lib.person, return_counts=True)
    return names[counts > k]


def fit_bars(lib: Library, draws: int, seed: int, self_training: bool = True) -> Bars:
    """Per number of taught people T: quantiles of the best normalised score of strangers."""
    rng = np.random.default_rng(seed)
    name, suggest = {}, {}
    for t_count in FIT_TAUGHT:
        best = []
        for k in FIT_KS:
            pool = eligible(lib, k)
            for _ in range(draws):
                taught = rng.choice(pool, min(t_count, len(pool)), replace=False)
                out = run_trial(lib, taught, k, rng, NEVER)
                best.append(out.score[~out.genuine])
        scores = np.concatenate(best)
        name[t_count] = round(float(np.quantile(scores, 1 - TARGET_NAMED)), 2)
        suggest[t_count] = round(float(np.quantile(scores, 1 - TARGET_SUGGESTED)), 2)
    for table in (name, suggest):  # more people can only raise the bar; enforce it against noise
        for a, b in itertools.pairwise(FIT_TAUGHT):
            table[b] = max(table[b], table[a])
    return Bars(name=name, suggest=suggest, self_training=self_training)


def vouch_features(
    lib: Library, taught: np.ndarray, k: int, rng: np.random.Generator, bars: Bars
) -> tuple[np.ndarray, int, int]:
    """One trial's self-training candidates (any score >= the lowest floor tried) that share a cluster
    with their best person's labels and nobody else's: rows of (membership strength, second-highest
    cosine to the other faces of the cluster, normalised score, right person). Also the numbers of
    genuine and stranger queries."""
    labelled: list[int] = []
    label_person: list[int] = []
    for j, p in enumerate(taught):
        labelled.extend(rng.choice(np.flatnonzero(lib.person == p), k, replace=False).tolist())
        label_person.extend([j] * k)
    who = np.array(label_person)
    rest = np.setdiff1d(np.arange(len(lib.person)), labelled)
    d = decide(lib.emb[labelled], who, lib.emb[rest], bars=replace(bars, self_training=False))
    z2 = d.score - d.margin
    candidates = (
        (d.state != NAMED)
        & (d.score >= min(FLOOR_GRID))
        & (d.margin >= bars.margin)
        & (z2 < bars.suggest_bar(len(taught)))
    )
    found, strength, support = cluster_evidence(lib.emb[labelled], who, lib.emb[rest], d.person, candidates)
    right = taught[d.person[found]] == lib.person[rest][found]
    rows = np.column_stack([strength, support, d.score[found], right.astype(float)])
    genuine = np.isin(lib.person[rest], taught)
    return rows, int(genuine.sum()), int((~genuine).sum())


def fit_cluster_vouching(lib: Library, bars: Bars, draws: int, seed: int) -> Bars:
    """The membership strength, support and score floor a cluster-vouched face needs: the grid point
    that vouches for the most genuine faces while naming at most TARGET_VOUCHED_STRANGERS of the
    strangers (ties: the strictest)."""
    rng = np.random.default_rng(seed)
    parts, n_genuine, n_strangers = [], 0, 0
    for k in FIT_KS:
        for t_count in (3, 10, 20):
            pool = eligible(lib, k)
            for _ in range(draws):
                rows, g, st = vouch_features(lib, rng.choice(pool, t_count, replace=False), k, rng, bars)
                parts.append(rows)
                n_genuine, n_strangers = n_genuine + g, n_strangers + st
    x = np.concatenate(parts)
    # (genuine vouched, strength, support, floor): nothing is vouched when no grid point fits
    best = (-1.0, 1.0, 1.0, np.inf)
    for strength, support, floor in itertools.product(STRENGTH_GRID, SUPPORT_GRID, FLOOR_GRID):
        keep = (x[:, 0] >= strength) & (x[:, 1] >= support) & (x[:, 2] >= floor)
        wrong = (keep & (x[:, 3] == 0)).sum() / n_strangers
        right = (keep & (x[:, 3] == 1)).sum() / n_genuine
        if wrong <= TARGET_VOUCHED_STRANGERS and right >= best[0]:
            best = (right, strength, support, floor)
    return replace(bars, cluster_min_strength=best[1], cluster_support=best[2], vouch_floor=best[3])


def fit_confidence(lib: Library, bars: Bars, draws: int, seed: int) -> tuple[float, float]:
    """Logistic fit of "the best candidate is the face's person" on (score - name bar), over trials
    with 3 and 20 taught people at k = 1, 3, 5 (strangers' candidates are always wrong)."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for t_count in (3, 20):
        for k in FIT_KS:
            pool = eligible(lib, k)
            for _ in range(draws):
                out = run_trial(lib, rng.choice(pool, t_count, replace=False), k, rng, bars)
                xs.append(out.score - bars.name_bar(t_count))
                ys.append(out.genuine & out.right_person)
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep = np.isfinite(x)
    model = LogisticRegression(C=10.0).fit(x[keep, None], y[keep].astype(int))
    return round(float(model.coef_[0][0]), 2), round(float(model.intercept_[0]), 2)


def split_folds(person: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """People (never photos) dealt into folds."""
    rng = np.random.default_rng(seed)
    names, counts = np.unique(person, return_counts=True)
    multi = rng.permutation(names[counts >= 2])
    single = rng.permutation(names[counts < 2])
    return [np.concatenate([multi[f::folds], single[f::folds]]) for f in range(folds)]


def fmt(rates: list[float]) -> str:
    return f"{np.mean(rates):.3f} (worst {np.min(rates):.3f})"


def lfw_cross_validation(
    lib: Library, folds: int, draws: int, name_floor: float
) -> tuple[list[str], list[Bars]]:
    split = split_folds(lib.person, folds, seed=0)
    results: dict[tuple[str, int, int], list[Outcome]] = defaultdict(list)
    fitted: list[Bars] = []
    for f in range(folds):
        fit_people = np.concatenate([split[g] for g in range(folds) if g != f])
        # The look-alike floor comes from kin_fiw, another data set: no LFW person is used to fit it.
        bars = replace(fit_bars(lib.of(fit_people), draws, seed=100 * f), name_floor=name_floor)
        bars = fit_cluster_vouching(lib.of(fit_people), bars, max(1, draws // 2), seed=200 * f)
        fitted.append(bars)
        held = lib.of(split[f])
        rng = np.random.default_rng(1000 + f)
        for k in (1, 3, 5):
            for t_count in (3, 10, 20):
                pool = eligible(held, k)
                for _ in range(draws):
                    taught = rng.choice(pool, min(t_count, len(pool)), replace=False)
                    state = rng.bit_generator.state
                    for name, rule in (
                        ("z-norm + self-training", bars),
                        ("z-norm", replace(bars, self_training=False)),
                    ):
                        rng.bit_generator.state = state  # same labelled photos for every rule
                        results[(name, k, t_count)].append(run_trial(held, taught, k, rng, rule))
                    rng.bit_generator.state = state
                    results[("plain centroid >= 0.40 (raw cosine)", k, t_count)].append(
                        run_trial_raw(held, taught, k, rng, 0.40)
                    )
    lines = [
        f"### faces_lfw: {folds}-fold person-disjoint cross-validation, {draws} draws per fold and setting",
        "",
        "Held-out people only (bars fitted on the other folds' people). "
        "'Not named' counts suggested as not named.",
        "",
        "| rule | k | taught T | named correctly | strangers unknown | strangers not named |",
        "|---|---|---|---|---|---|",
    ]
    for (rule_name, k, t_count), outs in sorted(results.items()):
        lines.append(
            f"| {rule_name} | {k} | {t_count} | {fmt([o.named_rate() for o in outs])} | "
            f"{fmt([o.stranger_unknown() for o in outs])} | {fmt([o.stranger_not_named() for o in outs])} |"
        )
    lines += [
        "",
        "Self-training fitted per fold (membership strength, support, score floor): "
        + "; ".join(
            f"{b.cluster_min_strength:.2f}, {b.cluster_support:.2f}, {b.vouch_floor:.1f}" for b in fitted
        ),
        "",
        "Name bars fitted per fold: "
        + "; ".join(
            f"T={t}: {min(b.name[t] for b in fitted):.2f}-{max(b.name[t] for b in fitted):.2f}"
            for t in FIT_TAUGHT
        ),
        "",
    ]
    return lines, fitted


def run_trial_raw(
    lib: Library, taught: np.ndarray, k: int, rng: np.random.Generator, threshold: float
) -> Outcome:
    """The plain rule: raw cosine to each centroid >= threshold, else unknown (no normalisation)."""
    labelled: list[int] = []
    cents = []
    for p in taught:
        idx = rng.choice(np.flatnonzero(lib.person == p), k, replace=False)
        labelled.extend(idx.tolist())
        c = lib.emb[idx].sum(axis=0)
        cents.append(c / np.linalg.norm(c))
    rest = np.setdiff1d(np.arange(len(lib.person)), labelled)
    sims = lib.emb[rest] @ np.stack(cents).T
    best = sims.argmax(axis=1)
    s1 = sims[np.arange(len(rest)), best]
    state = np.where(s1 >= threshold, NAMED, UNKNOWN).astype(object)
    return Outcome(np.isin(lib.person[rest], taught), taught[best] == lib.person[rest], state, s1)


def faces_protocols(lib: Library, bars: Bars, draws: int) -> list[str]:
    people = np.unique(lib.person)
    lines = [
        "### faces/ (5 people): bars fitted on all LFW dev people",
        "",
        "| protocol | rule | named correctly | strangers unknown | strangers not named |",
        "|---|---|---|---|---|",
    ]
    for name, rule in (
        ("z-norm + self-training", bars),
        ("z-norm", replace(bars, self_training=False)),
    ):
        for k in (1, 3, 5, 10):
            rng = np.random.default_rng(k)
            outs = [run_trial(lib, people, k, rng, rule) for _ in range(draws)]
            lines.append(f"| closed k={k} | {name} | {fmt([o.named_rate() for o in outs])} | | |")
        rng = np.random.default_rng(7)
        outs = [run_trial(lib, rng.choice(people, 3, replace=False), 10, rng, rule) for _ in range(draws)]
        lines.append(
            f"| open, 3 taught k=10 | {name} | {fmt([o.named_rate() for o in outs])} | "
            f"{fmt([o.stranger_unknown() for o in outs])} | {fmt([o.stranger_not_named() for o in outs])} |"
        )
    return [*lines, ""]


def kin_scores(
    kin: FaceSet, emb: np.ndarray, families: dict[str, dict[str, Any]], names: list[str], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each member with 4+ photos is taught alone with 3 photos; returns the normalised scores of
    their other photos and of every other family member's photos (the library, i.e. the cohort, is
    the whole kin set minus the labelled photos)."""
    person = np.array(kin.labels)[kin.found]
    x = emb[kin.found]
    rng = np.random.default_rng(seed)
    own, relatives = [], []
    for family in names:
        members = list(families[family]["members"])
        for m in members:
            idx = np.flatnonzero(person == m)
            rel = np.flatnonzero(np.isin(person, [r for r in members if r != m]))
            if len(idx) < 4 or len(rel) == 0:
                continue
            lab = rng.choice(idx, 3, replace=False)
            mine = np.setdiff1d(idx, lab)
            d = decide(
                x[lab],
                np.zeros(3, dtype=np.int64),
                x[np.concatenate([mine, rel])],
                bars=NEVER,
                cohort=np.delete(x, lab, axis=0),
            )
            own.append(d.score[: len(mine)])
            relatives.append(d.score[len(mine) :])
    return np.concatenate(own), np.concatenate(relatives)


def fit_name_floor(
    kin: FaceSet, emb: np.ndarray, families: dict[str, dict[str, Any]], names: list[str]
) -> float:
    _, relatives = kin_scores(kin, emb, families, names, seed=1)
    return round(float(np.quantile(relatives, 1 - TARGET_RELATIVES_NAMED)), 2)


def kin_report(
    kin: FaceSet, emb: np.ndarray, families: dict[str, dict[str, Any]], bars: Bars
) -> tuple[list[str], float]:
    """Family-disjoint: the look-alike floor is fitted on one half of the families, reported on the other."""
    halves = [sorted(families)[0::2], sorted(families)[1::2]]
    lines = [
        "### kin_fiw: one member taught with 3 photos, relatives as queries (family-disjoint halves)",
        "",
        f"Face found on {kin.found.mean():.3f} of {len(kin.found)} crops (no padding).",
        "",
        "| reported on | floor fitted on the other half | own photos named | relatives named as them "
        "| relatives suggested |",
        "|---|---|---|---|---|",
    ]
    for h in (0, 1):
        floor = fit_name_floor(kin, emb, families, halves[1 - h])
        held = replace(bars, name_floor=floor)
        own, rel = kin_scores(kin, emb, families, halves[h], seed=2)
        t1_name, t1_suggest = held.name_bar(1), held.suggest_bar(1)
        lines.append(
            f"| half {h} | {floor:.2f} | {np.mean(own >= t1_name):.3f} | {np.mean(rel >= t1_name):.3f} | "
            f"{np.mean((rel < t1_name) & (rel >= t1_suggest)):.3f} |"
        )
    final = fit_name_floor(kin, emb, families, sorted(families))
    return [*lines, "", f"Floor fitted on all dev families: {final:.2f}", ""], final


def plot_scores(path: Path, panels: list[tuple[str, np.ndarray, np.ndarray, Bars, int]]) -> None:
    """Per panel: genuine vs impostor normalised scores with the bars, and the ROC-style curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 3.6 * len(panels)), squeeze=False)
    for (title, genuine, impostor, bars, taught), (hist, roc) in zip(panels, axes, strict=True):
        genuine, impostor = genuine[np.isfinite(genuine)], impostor[np.isfinite(impostor)]
        bins = np.linspace(-4, 16, 81)
        hist.hist(impostor, bins=bins, alpha=0.6, density=True, label=f"impostor ({len(impostor)})")
        hist.hist(genuine, bins=bins, alpha=0.6, density=True, label=f"genuine ({len(genuine)})")
        for value, label in ((bars.suggest_bar(taught), "suggest"), (bars.name_bar(taught), "name")):
            hist.axvline(value, color="k", linestyle="--" if label == "suggest" else "-", linewidth=1)
            hist.text(value, hist.get_ylim()[1] * 0.9, f" {label}", fontsize=8)
        hist.set_yscale("log")
        hist.set_xlabel("normalised score of the best candidate")
        hist.set_title(title)
        hist.legend(fontsize=8)
        grid = np.linspace(-4, 16, 801)
        roc.plot([(impostor >= t).mean() for t in grid], [(genuine >= t).mean() for t in grid])
        roc.axvline((impostor >= bars.name_bar(taught)).mean(), color="k", linewidth=1)
        roc.set_xscale("symlog", linthresh=1e-3)
        roc.set_xlim(0, 1)
        roc.set_xlabel("impostors at or above the score")
        roc.set_ylabel("genuine at or above the score")
        roc.set_title("ROC (vertical line: the name bar)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def score_samples(
    lib: Library, bars: Bars, taught: int, k: int, draws: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Best-candidate normalised scores of genuine queries (right candidate) and of strangers."""
    rng = np.random.default_rng(seed)
    genuine, impostor = [], []
    for _ in range(draws):
        out = run_trial(lib, rng.choice(eligible(lib, k), taught, replace=False), k, rng, bars)
        genuine.append(out.score[out.genuine & out.right_person])
        impostor.append(out.score[~out.genuine])
    return np.concatenate(genuine), np.concatenate(impostor)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--testdata", type=Path, default=REPO_ROOT.parent / "shared" / "testdata")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--draws", type=int, default=6)
    parser.add_argument("--embedders", default="paddlex")
    parser.add_argument("--kin-pad", type=float, default=0.0)
    args = parser.parse_args()
    lfw = load_faces(args.testdata / "faces_lfw")
    faces = load_faces(args.testdata / "faces")
    kin = load_faces(args.testdata / "kin_fiw", pad=args.kin_pad)
    families = json.loads((args.testdata / "kin_fiw" / "families.json").read_text())
    for embedder in args.embedders.split(","):
        get = EMBEDDERS[embedder]
        lib = Library(get(lfw)[lfw.found], np.array(lfw.labels)[lfw.found])
        print(f"## Embedder: {embedder}\n")
        lfw_bars = fit_bars(lib, args.draws * 2, seed=12345)
        kin_lines, floor = kin_report(kin, get(kin), families, lfw_bars)
        lines, _ = lfw_cross_validation(lib, args.folds, args.draws, floor)
        print("\n".join(lines), flush=True)
        print("\n".join(kin_lines), flush=True)
        final = fit_cluster_vouching(lib, replace(lfw_bars, name_floor=floor), args.draws, seed=4321)
        print(
            f"Shipped bars: name {dict(final.name)} (floor {floor}), suggest {dict(final.suggest)}, "
            f"self-training: membership strength >= {final.cluster_min_strength}, "
            f"support >= {final.cluster_support}, score >= {final.vouch_floor}\n"
        )
        slope, offset = fit_confidence(lib, final, args.draws, seed=777)
        print(f"Confidence: P(best candidate right) = sigmoid({slope} * (score - name bar) + {offset})\n")
        flib = Library(get(faces)[faces.found], np.array(faces.labels)[faces.found])
        print("\n".join(faces_protocols(flib, final, args.draws * 2)), flush=True)
        if embedder == "paddlex":
            # Held-out fold 0 of the cross-validation, bars fitted on the other folds.
            split = split_folds(lib.person, args.folds, seed=0)
            fit_people = np.concatenate([split[g] for g in range(1, args.folds)])
            held_bars = replace(fit_bars(lib.of(fit_people), args.draws, seed=0), name_floor=floor)
            lfw_g, lfw_i = score_samples(lib.of(split[0]), held_bars, 20, 5, args.draws, seed=1)
            halves = [sorted(families)[0::2], sorted(families)[1::2]]
            own, relatives = kin_scores(kin, get(kin), families, halves[0], seed=2)
            kin_bars = replace(final, name_floor=fit_name_floor(kin, get(kin), families, halves[1]))
            plot_scores(
                REPO_ROOT / "bench" / "reports" / "recognition_scores.png",
                [
                    ("faces_lfw held-out fold, T=20, k=5", lfw_g, lfw_i, held_bars, 20),
                    ("kin_fiw half 0: own photos vs relatives, T=1, k=3", own, relatives, kin_bars, 1),
                ],
            )


if __name__ == "__main__":
    main()
