"""MTCNN against YuNet: detection, false faces, time, and what each does for recognition.

Usage: .venv/bin/python bench/compare_face_detectors.py FACES_FOLDER [--group-folder DETECTION_FOLDER]
           [--draws 20] [--variants] [--quality]

FACES_FOLDER has the testdata/faces layout (images/ + ground_truth.json, one main person per photo).
Per detector: photos with a face, photos with more than one, main (largest) faces both detectors
agree on, ms per photo; then recognition of the main face with MobileFaceNet on that detector's
landmarks: nearest centroid (cosine) with k = 1/3/5/10 enrolled photos per person over seeded random
draws (a photo without a face counts as wrong), and the open set (3 people taught with k=10, the
others must come back "unknown") at the threshold that balances the two. These are bare-model
figures: no classifier, no self-training.

--group-folder (COCO layout): faces on photos with 3+ people, faces on photos with no person
(false), and faces whose centre lies in no person box (mostly false; COCO leaves crowds unlabelled).
--variants: what the pre-processing choices do (detector upscaling, BGR/RGB, flip TTA).
--quality: identification of faces shrunk to N px and blurred, to set the "recognisable" thresholds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from core.config import get_settings  # noqa: E402
from onnx_models.manifest import load_manifest  # noqa: E402
from services.inference.face_align import (  # noqa: E402
    MIN_FACE_PX,
    MIN_SHARPNESS,
    align_face,
    laplacian_variance,
)
from services.inference.faces import (  # noqa: E402
    FaceDetection,
    FaceDetector,
    FaceEmbedder,
    MtcnnDetector,
    YuNetDetector,
    load_face_detector,
)
from services.photos.images import load_oriented  # noqa: E402

SETTINGS = get_settings()
MANIFEST = load_manifest()
YUNET, MTCNN = MANIFEST.by_name("yunet"), MANIFEST.by_name("mtcnn")
EMBEDDER = MANIFEST.default_for("face_embedding")

MAX_SIDE = 1280  # what the analysis job decodes photos to (services/analysis.py)
KS = (1, 3, 5, 10)
THRESHOLDS = np.round(np.arange(0.05, 0.70, 0.01), 2)


@dataclass
class FaceSet:
    names: list[str]
    labels: np.ndarray  # person index per photo
    people: list[str]
    images: list[Image.Image]


@dataclass
class Run:
    """One detector (+ embedder) over the faces set."""

    label: str
    detections: list[list[FaceDetection]]
    main: list[FaceDetection | None]
    embeddings: np.ndarray  # [photos, dim], zero rows where no face was found
    found: np.ndarray
    det_ms: float  # per photo
    embed_ms: float  # per face, alignment included


def load_set(folder: Path) -> FaceSet:
    truth: dict[str, str] = json.loads((folder / "ground_truth.json").read_text())
    names = sorted(truth)
    people = sorted(set(truth.values()))
    return FaceSet(
        names=names,
        labels=np.array([people.index(truth[n]) for n in names]),
        people=people,
        images=[load_oriented((folder / "images" / n).read_bytes(), max_side=MAX_SIDE) for n in names],
    )


def detect_timed(detector: FaceDetector, images: list[Image.Image], batch: int = 8) -> tuple[list, float]:
    detector.detect(images[:1])  # warm-up: session creation and first-run allocations
    started = time.perf_counter()
    out: list[list[FaceDetection]] = []
    for i in range(0, len(images), batch):
        out += detector.detect(images[i : i + batch])
    return out, (time.perf_counter() - started) * 1000 / max(len(images), 1)


def largest(faces: list[FaceDetection]) -> FaceDetection | None:
    return max(faces, key=lambda f: f.area_px, default=None)


def run_detector(
    label: str, detector: FaceDetector, embedder: FaceEmbedder, data: FaceSet, cached: list | None = None
) -> Run:
    if cached is None:
        detections, det_ms = detect_timed(detector, data.images)
    else:
        detections, det_ms = cached, float("nan")
    main = [largest(faces) for faces in detections]
    found = np.array([m is not None for m in main])
    started = time.perf_counter()
    crops = [
        align_face(img, m.landmarks_px(), embedder.template)[0]
        for img, m in zip(data.images, main, strict=True)
        if m is not None
    ]
    vectors = embedder.embed(crops)
    embed_ms = (time.perf_counter() - started) * 1000 / max(len(crops), 1)
    embeddings = np.zeros((len(main), embedder.dim), dtype=np.float32)
    embeddings[found] = vectors
    return Run(label, detections, main, embeddings, found, det_ms, embed_ms)


# --- recognition protocols --------------------------------------------------------------------------


def centroids(embeddings: np.ndarray, labels: np.ndarray, enrolled: np.ndarray, n_people: int) -> np.ndarray:
    out = np.zeros((n_people, embeddings.shape[1]), dtype=np.float32)
    np.add.at(out, labels[enrolled], embeddings[enrolled])
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def enrolment(labels: np.ndarray, people: list[int], k: int, rng: np.random.Generator) -> np.ndarray:
    enrolled = np.zeros(len(labels), dtype=bool)
    for p in people:
        enrolled[rng.choice(np.flatnonzero(labels == p), k, replace=False)] = True
    return enrolled


def closed_set(run: Run, data: FaceSet, k: int, draws: int) -> np.ndarray:
    """Accuracy per draw. Same seeds for every run, so detectors meet the same enrolments."""
    rng = np.random.default_rng(1000 + k)
    people = list(range(len(data.people)))
    scores = []
    for _ in range(draws):
        enrolled = enrolment(data.labels, people, k, rng)
        gallery = centroids(run.embeddings, data.labels, enrolled & run.found, len(people))
        query = ~enrolled
        predicted = np.argmax(run.embeddings[query] @ gallery.T, axis=1)
        scores.append(np.mean((predicted == data.labels[query]) & run.found[query]))
    return np.array(scores)


def open_set(run: Run, data: FaceSet, draws_per_combo: int, taught_n: int = 3, k: int = 10) -> dict:
    """Taught-correct and stranger-unknown rates per cosine threshold, over every choice of taught people."""
    rng = np.random.default_rng(7)
    taught_ok, stranger_ok = [], []
    for taught in itertools.combinations(range(len(data.people)), taught_n):
        for _ in range(draws_per_combo):
            enrolled = enrolment(data.labels, list(taught), k, rng)
            gallery = centroids(run.embeddings, data.labels, enrolled & run.found, len(data.people))
            gallery = gallery[list(taught)]
            sims = run.embeddings @ gallery.T
            best = np.array(taught)[np.argmax(sims, axis=1)]
            best_sim = sims.max(axis=1)
            is_taught = np.isin(data.labels, taught)
            q_taught = is_taught & ~enrolled
            above = best_sim[None, :] >= THRESHOLDS[:, None] - 1e-9  # [T, photos]
            right = (best == data.labels) & run.found
            taught_ok.append((above & right)[:, q_taught].mean(axis=1))
            stranger_ok.append((~above | ~run.found)[:, ~is_taught].mean(axis=1))
    t_mean, s_mean = np.mean(taught_ok, axis=0), np.mean(stranger_ok, axis=0)
    i = int(np.argmax(np.minimum(t_mean, s_mean)))
    return {"threshold": float(THRESHOLDS[i]), "taught": float(t_mean[i]), "strangers": float(s_mean[i])}


def loo_right(run: Run, data: FaceSet) -> np.ndarray:
    """Main face identified right with every other photo enrolled: the main face is the labelled person."""
    out = np.zeros(len(data.names), dtype=bool)
    for i in np.flatnonzero(run.found):
        enrolled = run.found.copy()
        enrolled[i] = False
        gallery = centroids(run.embeddings, data.labels, enrolled, len(data.people))
        out[i] = int(np.argmax(gallery @ run.embeddings[i])) == data.labels[i]
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# --- group / false-face check on the COCO layout ----------------------------------------------------


def group_check(detector: FaceDetector, folder: Path) -> dict:
    truth: dict[str, list[dict]] = json.loads((folder / "ground_truth.json").read_text())
    names = sorted(truth)
    images = [load_oriented((folder / "images" / n).read_bytes(), max_side=MAX_SIDE) for n in names]
    detections, ms = detect_timed(detector, images)
    stats = {"ms": ms, "groups": 0, "group_faces": 0, "no_person_photos": 0, "no_person_faces": 0}
    stats |= {"outside_person": 0, "outside_small": 0}
    for name, faces in zip(names, detections, strict=True):
        persons = [o["bbox_xyxy_normalised"] for o in truth[name] if o["class_name"] == "person"]
        if len(persons) >= 3:
            stats["groups"] += 1
            stats["group_faces"] += len(faces)
        if not persons:
            stats["no_person_photos"] += 1
            stats["no_person_faces"] += len(faces)
            continue
        for f in faces:
            cx, cy = f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2
            pad = 0.02  # person boxes are tight; a face on the outline still counts as inside
            if not any(p[0] - pad <= cx <= p[2] + pad and p[1] - pad <= cy <= p[3] + pad for p in persons):
                stats["outside_person"] += 1
                stats["outside_small"] += f.size_px < MIN_FACE_PX
    stats["photos"] = len(names)
    return stats


# --- quality thresholds ------------------------------------------------------------------------------


def quality_study(detector: FaceDetector, embedder: FaceEmbedder, run: Run, data: FaceSet) -> list[dict]:
    """Shrink each main face to N px / blur it, re-detect, and identify it against the others' centroids."""
    n_people = len(data.people)
    loo_gallery = []
    for i in range(len(data.names)):
        enrolled = run.found.copy()
        enrolled[i] = False
        loo_gallery.append(centroids(run.embeddings, data.labels, enrolled, n_people))

    def evaluate(kind: str, level: float, variants: list[tuple[int, Image.Image, np.ndarray]]) -> list[dict]:
        rows = []
        detections = detector.detect([img for _, img, _ in variants])
        for (i, img, box), faces in zip(variants, detections, strict=True):
            best = max(faces, key=lambda f: iou(f.box_xyxy_px(), box), default=None)
            if best is None or iou(best.box_xyxy_px(), box) < 0.3:
                rows.append({"kind": kind, "level": level, "found": False, "right": False})
                continue
            crop = align_face(img, best.landmarks_px(), embedder.template)[0]
            vector = embedder.embed([crop])[0]
            right = int(np.argmax(loo_gallery[i] @ vector)) == data.labels[i]
            rows.append(
                {
                    "kind": kind,
                    "level": level,
                    "found": True,
                    "right": bool(right),
                    "size": best.size_px,
                    "sharpness": laplacian_variance(crop),
                }
            )
        return rows

    rows: list[dict] = []
    mains = [(i, m) for i, m in enumerate(run.main) if m is not None]
    rows += evaluate("native", 0, [(i, data.images[i], m.box_xyxy_px()) for i, m in mains])
    for px in (10, 12, 14, 16, 20, 24, 28, 32, 40):
        variants = []
        for i, m in mains:
            f = px / m.size_px
            if f < 1:
                img = data.images[i]
                small = img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))))
                variants.append((i, small, m.box_xyxy_px() * f))
        rows += evaluate("shrunk to px", px, variants)
    for frac in (0.02, 0.03, 0.04, 0.06, 0.08):
        variants = [
            (i, data.images[i].filter(ImageFilter.GaussianBlur(frac * m.size_px)), m.box_xyxy_px())
            for i, m in mains
        ]
        rows += evaluate("blur sigma / face", frac, variants)
    return rows


# --- report -----------------------------------------------------------------------------------------


def fmt(values: np.ndarray) -> str:
    return f"{values.mean():.3f} ({values.min():.3f}–{values.max():.3f})"


def print_detection(runs: list[Run], data: FaceSet) -> None:
    print("\n## Detection on the faces set\n")
    print(
        "| detector | photos with a face | photos with 2+ faces | extra faces | main face agrees with the "
        "other detector (IoU ≥ 0.5) | main face is the labelled person (LOO) | ms / photo (detect) "
        "| ms / face (align + embed) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        other = next(r for r in runs if r is not run)
        agree = [
            a is not None and b is not None and iou(a.box_xyxy_px(), b.box_xyxy_px()) >= 0.5
            for a, b in zip(run.main, other.main, strict=True)
        ]
        print(
            f"| {run.label} | {run.found.mean():.3f} | {sum(len(d) > 1 for d in run.detections)} "
            f"| {sum(max(len(d) - 1, 0) for d in run.detections)} | {np.mean(agree):.3f} "
            f"| {loo_right(run, data).mean():.3f} | {run.det_ms:.1f} | {run.embed_ms:.1f} |"
        )


def print_recognition(runs: list[Run], data: FaceSet, draws: int, title: str, open_draws: int = 5) -> None:
    print(f"\n## {title}\n")
    print(
        f"Nearest centroid, mean (min–max) over {draws} draws; open set: 10 choices of 3 taught people "
        f"× {open_draws} draws, k=10.\n"
    )
    print("| run | k=1 | k=3 | k=5 | k=10 | open set: taught named / strangers unknown @ threshold |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        cells = [fmt(closed_set(run, data, k, draws)) for k in KS]
        o = open_set(run, data, open_draws)
        print(
            f"| {run.label} | {' | '.join(cells)} | {o['taught']:.3f} / {o['strangers']:.3f} "
            f"@ {o['threshold']:.2f} |"
        )


def print_quality(rows: list[dict]) -> None:
    print("\n## Face quality: identification of degraded main faces (others' centroids enrolled)\n")
    print(
        "| degradation | level | n | found | identified right | median size px | median sharpness "
        "| recognisable |"
    )
    print("|---|---|---|---|---|---|---|---|")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["level"]), []).append(r)
    for (kind, level), rs in groups.items():
        found = [r for r in rs if r["found"]]
        size = np.median([r["size"] for r in found]) if found else float("nan")
        sharp = np.median([r["sharpness"] for r in found]) if found else float("nan")
        rec = np.mean([r["size"] >= MIN_FACE_PX and r["sharpness"] >= MIN_SHARPNESS for r in found])
        print(
            f"| {kind} | {level} | {len(rs)} | {len(found) / len(rs):.3f} "
            f"| {np.mean([r['right'] for r in rs]):.3f} | {size:.1f} | {sharp:.1f} | {rec:.2f} |"
        )
    found = [r for r in rows if r["found"]]
    size = np.array([r["size"] for r in found])
    sharp = np.array([r["sharpness"] for r in found])
    right = np.array([r["right"] for r in found])
    print("\n| min size px | min sharpness | recognisable: n, right | excluded: n, right |")
    print("|---|---|---|---|")
    for min_px, min_sharp in [(16, 10), (20, 5), (20, 10), (20, 20), (24, 10), (24, 40), (32, 10)]:
        rec = (size >= min_px) & (sharp >= min_sharp)
        print(
            f"| {min_px} | {min_sharp} | {rec.sum()}, {right[rec].mean():.3f} "
            f"| {(~rec).sum()}, {right[~rec].mean():.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("faces_folder", type=Path)
    parser.add_argument("--group-folder", type=Path)
    parser.add_argument("--draws", type=int, default=50)
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--quality", action="store_true")
    args = parser.parse_args()

    data = load_set(args.faces_folder)
    embedder = FaceEmbedder(EMBEDDER, SETTINGS)  # MobileFaceNet, BGR, flip TTA
    detectors = {name: load_face_detector(SETTINGS, name) for name in ("yunet", "mtcnn")}
    runs = [run_detector(name, det, embedder, data) for name, det in detectors.items()]
    print(f"{len(data.names)} photos of {len(data.people)} people; {args.draws} draws per k")
    print_detection(runs, data)
    print_recognition(runs, data, args.draws, "Recognition of the main face with each detector's landmarks")

    if args.group_folder:
        print("\n## Faces on COCO photos (--group-folder)\n")
        print(
            "| detector | ms / photo | faces on photos with 3+ people | faces on photos with no person "
            "(false) | faces outside every person box (of them < min size) |"
        )
        print("|---|---|---|---|---|")
        for name, det in detectors.items():
            s = group_check(det, args.group_folder)
            print(
                f"| {name} | {s['ms']:.1f} | {s['group_faces']} on {s['groups']} "
                f"| {s['no_person_faces']} on {s['no_person_photos']} "
                f"| {s['outside_person']} ({s['outside_small']}) |"
            )

    if args.variants:
        variants: list[tuple[str, Callable[[], FaceDetector], FaceEmbedder]] = [
            (
                "yunet, no upscaling",
                lambda: YuNetDetector(YUNET, SETTINGS, max_upscale=1.0),
                embedder,
            ),
            (
                "yunet, up to 2x",
                lambda: YuNetDetector(YUNET, SETTINGS, max_upscale=2.0),
                embedder,
            ),
            (
                "mtcnn, no upscaling",
                lambda: MtcnnDetector(MTCNN, SETTINGS, min_side=0),
                embedder,
            ),
            (
                "mtcnn, short side upscaled to 480",
                lambda: MtcnnDetector(MTCNN, SETTINGS, min_side=480),
                embedder,
            ),
        ]
        variant_runs = [run_detector(label, make(), emb, data) for label, make, emb in variants]
        yunet = runs[0]
        for label, emb in [
            (
                "yunet, no flip TTA",
                FaceEmbedder(EMBEDDER, SETTINGS, flip_tta=False),
            ),
            ("yunet, RGB input", _rgb_embedder()),
        ]:
            variant_runs.append(run_detector(label, detectors["yunet"], emb, data, cached=yunet.detections))
        for run in variant_runs:
            print(f"{run.label}: found {run.found.mean():.3f}, {run.det_ms:.1f} ms/photo")
        print_recognition([runs[0], runs[1], *variant_runs], data, args.draws, "Variants")

    if args.quality:
        print_quality(quality_study(detectors["yunet"], embedder, runs[0], data))


def _rgb_embedder() -> FaceEmbedder:
    embedder = FaceEmbedder(EMBEDDER, SETTINGS)
    embedder.bgr = False
    return embedder


if __name__ == "__main__":
    main()
