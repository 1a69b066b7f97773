"""Rotation suggestions on real photos turned at random: the rotation head against the detector probes.

Usage: .venv/bin/python bench/eval_rotation.py --fit FOLDER [...] --report FOLDER [...] [--limit N]
       [--seed S] [--previous-head FILE] [--out bench/reports/rotation.json]

Each photo (assumed upright, as in the test sets) is turned by 0/90/180/270 degrees at random; the
check must name the clockwise turn that puts it right. On the same turned photos, in one run:

- `probes` (main before the head): the detectors run again on each of the three other turns (640 px),
  unless they saw the photo clearly upright as stored; the turn with the most upright evidence wins
  by a gain of at least 0.25;
- `head`: the rotation head alone over the labeler's embedding of each turn (three labeler passes);
- `head + mosaic` (what the service runs): where the head hesitates (no turn at HEAD_SURE), its
  log-probabilities plus the detectors' upright evidence per turn, from one detector pass over a 2x2
  mosaic of the four turns; elsewhere the head alone.
- with --previous-head, `head (previous)` and `head + mosaic (previous)`: the same two with an earlier
  head over the labels' centre-crop views (four views side by side, input [N,4,1280]: main's head
  before the squashed views; or one upright score per view, input [N,1280], the head before that), on
  the same photos and mosaics, so old and new are compared in one run.

The probability bar (and for `head + mosaic` the evidence weight) are chosen on the --fit photos (the
most accurate choice whose non-zero suggestions are right >= 0.95 there) and reported on the --report
photos, which choose nothing; the head was trained on flickr8k_train only. Prints accuracy, how many
non-zero suggestions were right, how many turned photos were found, and each check's extra time per
photo; writes --out.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from core.config import get_settings  # noqa: E402
from services.inference.models import ModelSet  # noqa: E402
from services.inference.runtime import OnnxSession  # noqa: E402
from services.photos.images import ANALYSIS_MAX_SIDE, load_oriented  # noqa: E402
from services.quality.rotation import (  # noqa: E402
    EVIDENCE_WEIGHT,
    MIN_PROBABILITY,
    PROBE_SIDE,
    ROTATIONS,
    combined_probabilities,
    head_is_sure,
    mosaic_evidence,
    upright_evidence,
)

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
BARS = [round(0.3 + 0.02 * i, 2) for i in range(35)]
WEIGHTS = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
# The detector probes as main shipped them: the stored evidence that skips them, and the winning gain.
CLEARLY_UPRIGHT = 2.0
PROBE_MIN_GAIN = 0.25


def photos(folders: list[Path], limit: int) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        images = folder / "images" if (folder / "images").is_dir() else folder
        found += sorted(p for p in images.iterdir() if p.suffix.lower() in SUFFIXES)[:limit]
    return found


def probe_evidence(models: ModelSet, shown: Any, stored: float) -> list[float]:
    """Main's detector probes: the stored evidence, then each other turn at 640 px."""
    probe = shown.copy()
    probe.thumbnail((PROBE_SIDE, PROBE_SIDE))
    candidates = [probe.rotate(-r, expand=True) for r in ROTATIONS[1:]]
    found = models.objects.detect(candidates)
    faces = models.faces.detector.detect(candidates)
    return [stored, *(upright_evidence(d, [f.score for f in fs]) for d, fs in zip(found, faces, strict=True))]


def previous_head_probabilities(
    session: OnnxSession, models: ModelSet, shown: Any, embedding: np.ndarray
) -> list[float]:
    """An earlier head's turn probabilities over the labels' centre-crop views (`embedding` is the
    crop as stored): a softmax over its four scores. Heads of one upright score per view (input
    [N, 1280]) and heads of four views side by side (input [N, 4, 1280]) are both read."""
    views = np.concatenate(
        [embedding[None, None, :], models.labels.embed_turns([shown], ROTATIONS[1:])], axis=1
    )
    four_views = len(session.session.get_inputs()[0].shape) == 3
    feed = views if four_views else views.reshape(len(ROTATIONS), -1)
    (scores,) = session.run({session.input_names[0]: np.ascontiguousarray(feed)})
    logits = np.asarray(scores, dtype=np.float64).ravel()
    exp = np.exp(logits - logits.max())
    return [float(p) for p in exp / exp.sum()]


def collect(
    models: ModelSet, paths: list[Path], rng: random.Random, previous: OnnxSession | None = None
) -> list[dict[str, Any]]:
    """Per photo: the turn, the stored evidence, each check's evidence and its time."""
    rows = []
    for path in paths:
        upright = load_oriented(path.read_bytes(), max_side=ANALYSIS_MAX_SIDE)
        turn = rng.choice(ROTATIONS)
        shown = upright.rotate(turn, expand=True)  # counter-clockwise: the fix is clockwise `turn`
        # What the analysis has anyway: detections, faces and the labels' embedding as stored.
        detections = models.objects.detect([shown])[0]
        face_scores = [f.score for f in models.faces.detector.detect([shown])[0]]
        embedding = models.labels.predict([shown])[0].embedding
        stored = upright_evidence(detections, face_scores)
        row: dict[str, Any] = {"photo": path.name, "turn": turn, "stored": stored}
        started = time.perf_counter()
        row["probes"] = probe_evidence(models, shown, stored)
        row["probes_seconds"] = time.perf_counter() - started
        # As the analysis does: the upright view is the squashed embedding the alignment head reads
        # anyway (its sentence vector), so it is not the check's cost.
        squashed = models.alignment.image_embeddings([shown])
        started = time.perf_counter()
        row["head"] = models.rotation.turn_probabilities([shown], squashed)[0].tolist()
        row["head_seconds"] = time.perf_counter() - started
        if previous is not None:
            started = time.perf_counter()
            row["head (previous)"] = previous_head_probabilities(previous, models, shown, embedding)
            row["head (previous)_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        row["mosaic"] = mosaic_evidence(shown, models.objects, models.faces.detector)
        row["mosaic_seconds"] = time.perf_counter() - started
        rows.append(row)
    return rows


def head_key(check: str) -> str:
    return "head (previous)" if check.endswith("(previous)") else "head"


def decide(row: dict[str, Any], check: str, bar: float, weight: float) -> int:
    if check == "probes":
        if row["stored"] >= CLEARLY_UPRIGHT:
            return 0
        scores = np.asarray(row["probes"])
        best = int(scores.argmax())
        return ROTATIONS[best] if best and scores[best] - scores[0] >= PROBE_MIN_GAIN else 0
    head = np.asarray(row[head_key(check)])
    # As the service does: the mosaic pass only where the head hesitates.
    mosaic = check.startswith("head + mosaic") and not head_is_sure(head)
    evidence = row["mosaic"] if mosaic else [0.0] * 4
    probabilities = combined_probabilities(head, [weight * e for e in evidence])
    best = int(probabilities.argmax())
    return ROTATIONS[best] if best and probabilities[best] >= bar else 0


def score(rows: list[dict[str, Any]], check: str, bar: float, weight: float = 1.0) -> dict[str, float]:
    outcomes = [(row["turn"], decide(row, check, bar, weight)) for row in rows]
    nonzero = [(t, s) for t, s in outcomes if s != 0]
    nonzero_right = sum(t == s for t, s in nonzero)
    return {
        "accuracy": round(sum(t == s for t, s in outcomes) / max(1, len(outcomes)), 4),
        "nonzero_suggestions": len(nonzero),
        "nonzero_right": round(nonzero_right / max(1, len(nonzero)), 4),
        "turned_found": round(nonzero_right / max(1, sum(t != 0 for t, _ in outcomes)), 4),
    }


def choose(rows: list[dict[str, Any]], check: str) -> tuple[float, float]:
    """The most accurate (bar, weight) whose non-zero suggestions are right >= 0.95 (ties: lower)."""
    best, best_accuracy = (BARS[-1], 1.0), -1.0
    for weight in WEIGHTS if check.startswith("head + mosaic") else [1.0]:
        for bar in BARS:
            result = score(rows, check, bar, weight)
            if result["nonzero_right"] >= 0.95 and result["accuracy"] > best_accuracy:
                best, best_accuracy = (bar, weight), result["accuracy"]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fit", type=Path, nargs="+", required=True)
    parser.add_argument("--report", type=Path, nargs="+", required=True)
    parser.add_argument("--limit", type=int, default=150, help="photos per folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--previous-head", type=Path, default=None, help="an earlier rotation_head.onnx to compare with"
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "reports" / "rotation.json")
    args = parser.parse_args()
    settings = get_settings()
    models = ModelSet(settings)
    previous = None if args.previous_head is None else OnnxSession(args.previous_head, settings)
    rng = random.Random(args.seed)
    fit_rows = collect(models, photos(args.fit, args.limit), rng, previous)
    report_rows = collect(models, photos(args.report, args.limit), rng, previous)
    summary: dict[str, Any] = {"fit_photos": len(fit_rows), "report_photos": len(report_rows), "checks": {}}
    timing = {
        "probes": ["probes_seconds"],
        "head": ["head_seconds"],
        "head + mosaic": ["head_seconds", "mosaic_seconds"],
        "head (previous)": ["head (previous)_seconds"],
        "head + mosaic (previous)": ["head (previous)_seconds", "mosaic_seconds"],
    }
    checks = ["probes", "head", "head + mosaic"]
    if previous is not None:
        checks[1:1] = ["head (previous)", "head + mosaic (previous)"]
    for check in checks:
        bar, weight = (0.0, 0.0) if check == "probes" else choose(fit_rows, check)
        seconds = [
            sum(
                row[k]
                for k in timing[check]
                if k != "mosaic_seconds" or not head_is_sure(np.asarray(row[head_key(check)]))
            )
            for row in fit_rows + report_rows
        ]
        summary["checks"][check] = {
            "chosen_on_fit": None if check == "probes" else {"bar": bar, "evidence_weight": weight},
            "fit": score(fit_rows, check, bar, weight),
            "report": score(report_rows, check, bar, weight),
            "report_as_shipped": score(report_rows, check, MIN_PROBABILITY, EVIDENCE_WEIGHT),
            "extra_seconds_per_photo_median": round(float(np.median(seconds)), 4),
            "extra_seconds_per_photo_mean": round(float(np.mean(seconds)), 4),
        }
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "fit": fit_rows, "report": report_rows}, indent=1))


if __name__ == "__main__":
    main()
