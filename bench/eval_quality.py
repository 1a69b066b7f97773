"""Quality flags: thresholds calibrated on degraded real photos, scored on held-out ones and a real set.

Usage:
    .venv/bin/python bench/eval_quality.py QUALITY_FOLDER SHARP_FOLDER [SHARP_FOLDER ...]
        [--limit N] [--seed S] [--write-thresholds] [--dump-metrics CSV]

e.g. .venv/bin/python bench/eval_quality.py ../shared/testdata/quality ../shared/testdata/detection \
         ../shared/testdata/captions

QUALITY_FOLDER has the testdata/quality layout (images/ + ground_truth.json whose entries carry a
`label`: sharp, defocus_blur, motion_blur or dark). SHARP_FOLDERs hold ordinary photos (e.g. the
detection or captions sets, images/ inside or the folder itself). Each photo, at its own pixel scale,
is kept clean and degraded once in each of six known ways:

    blurry              Gaussian blur, sigma 1.5-3.5 px
    motion_blur         straight motion kernel 9-21 px long, any angle
    dark                exposure x0.15-0.3 in linear light
    overexposed         exposure +1.5..+2.5 stops in linear light, clipped
    noisy               Gaussian noise, sigma 10-25 grey levels per channel
    heavily_compressed  re-saved as JPEG quality 10 (the quality estimate reads the new tables)

The other images keep their file's own quantisation tables, as the analysis job would pass them.
Photos are shuffled with the seed and split in half by photo: thresholds are chosen on the calibration
half (best F1 of each reason against every other image, clean or degraded otherwise) and all figures
below the calibration table are from the held-out half. The real set is never used for choosing.
`--write-thresholds` stores the calibrated values in services/quality/quality_thresholds.json.

The source photos are small (500-640 px), so the analysis sees them at their own scale; their size
would flag every one low_resolution, so that reason (a plain rule on the original's pixel size) is left
out of the degraded-set figures. The real set is judged as the analysis job does: a 1280 px copy plus
the original's size and quantisation tables.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy import signal

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from services.photos.images import load_oriented  # noqa: E402
from services.quality.assess import (  # noqa: E402
    ISSUES,
    THRESHOLDS_PATH,
    QualityThresholds,
    assess_quality,
    flag_issues,
    jpeg_tables,
    judge,
    measure_quality,
)

DEGRADATIONS = ("blurry", "motion_blur", "dark", "overexposed", "noisy", "heavily_compressed")
KINDS = ("clean", *DEGRADATIONS)
# What the real set's labels should produce: strict reasons, and the lenient "any blur" reading.
REAL_EXPECTED = {"sharp": set(), "defocus_blur": {"blurry"}, "motion_blur": {"motion_blur"}, "dark": {"dark"}}
BLUR = {"blurry", "motion_blur"}
ANALYSIS_MAX_SIDE = 1280  # what services/analysis.py hands to assess_quality
MAX_CLEAN_FLAG_RATE = 0.03  # calibration constraint: share of clean originals a reason may flag


@dataclass
class Sample:
    photo: str
    kind: str
    split: str
    metrics: dict[str, float]


# --------------------------------------------------------------------------- degradations


def _to_linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Anti-aliased straight-line kernel: samples along the segment splatted bilinearly."""
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size + 2, size + 2))
    centre = (size + 1) / 2
    t = np.linspace(-length / 2, length / 2, int(length * 8))
    xs = centre + t * np.cos(np.radians(angle_deg))
    ys = centre - t * np.sin(np.radians(angle_deg))
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, w in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(kernel, (y0 + dy, x0 + dx), w)
    return kernel / kernel.sum()


def _convolve_rgb(pixels: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    pad = kernel.shape[0] // 2
    padded = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    return np.stack([signal.fftconvolve(padded[..., c], kernel, mode="valid") for c in range(3)], axis=-1)


def degrade(image: Image.Image, kind: str, rng: random.Random) -> tuple[Image.Image, bytes | None]:
    """One degraded copy (and the new JPEG bytes when the degradation is a re-save)."""
    if kind == "clean":
        return image, None
    if kind == "blurry":
        return image.filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 3.5))), None
    if kind == "heavily_compressed":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=10)
        data = buffer.getvalue()
        return Image.open(io.BytesIO(data)).convert("RGB"), data
    pixels = np.asarray(image, dtype=np.float64) / 255.0
    if kind == "motion_blur":
        out = _convolve_rgb(pixels, motion_kernel(rng.uniform(9, 21), rng.uniform(0, 180)))
    elif kind == "dark":
        out = _to_srgb(_to_linear(pixels) * rng.uniform(0.15, 0.3))
    elif kind == "overexposed":
        out = _to_srgb(_to_linear(pixels) * 2 ** rng.uniform(1.5, 2.5))
    elif kind == "noisy":
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(
            0, rng.uniform(10, 25) / 255, pixels.shape
        )
        out = pixels + noise
    else:
        raise ValueError(kind)
    return Image.fromarray(np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)), None


def _photo_paths(folder: Path) -> list[Path]:
    images = folder / "images" if (folder / "images").is_dir() else folder
    return sorted(p for p in images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def build_degraded(folders: Iterable[Path], limit: int, seed: int) -> tuple[list[Sample], list[float]]:
    """Measure every clean and degraded image; returns samples and per-image measuring times (s)."""
    rng = random.Random(seed)
    paths: list[Path] = []
    for folder in folders:
        chosen = _photo_paths(folder)
        rng.shuffle(chosen)
        paths += chosen[:limit]
    # Split by photo, so no photo's degraded copies sit on both sides.
    order = list(range(len(paths)))
    rng.shuffle(order)
    split = {i: ("calibration" if rank % 2 == 0 else "holdout") for rank, i in enumerate(order)}
    samples: list[Sample] = []
    times: list[float] = []
    for index, path in enumerate(paths):
        data = path.read_bytes()
        original = load_oriented(data, max_side=ANALYSIS_MAX_SIDE)
        tables = _tables(data)
        for kind in KINDS:
            image, new_data = degrade(original, kind, rng)
            started = time.perf_counter()
            metrics = measure_quality(image, jpeg_quant_tables=_tables(new_data) if new_data else tables)
            times.append(time.perf_counter() - started)
            samples.append(Sample(f"{path.parent.parent.name}/{path.name}", kind, split[index], metrics))
    return samples, times


def _tables(data: bytes | None) -> dict[int, list[int]] | None:
    return jpeg_tables(data) if data else None


# --------------------------------------------------------------------------- calibration


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / max(1, 2 * tp + fp + fn)


@dataclass
class Arrays:
    """The samples as arrays, so a threshold set is judged on all of them in one vectorised call."""

    metrics: dict[str, np.ndarray]
    kinds: np.ndarray
    clean_index: np.ndarray  # index of the same photo's clean copy, per sample

    @classmethod
    def of(cls, samples: list[Sample]) -> Arrays:
        keys = sorted({k for s in samples for k in s.metrics})
        clean = {s.photo: i for i, s in enumerate(samples) if s.kind == "clean"}
        return cls(
            {k: np.array([s.metrics.get(k, np.nan) for s in samples]) for k in keys},
            np.array([s.kind for s in samples]),
            np.array([clean[s.photo] for s in samples]),
        )

    def counts(self, thresholds: QualityThresholds, reason: str, excuse: bool = True) -> tuple[int, int, int]:
        """tp, fp, fn for one reason. With `excuse`, a flag on a copy degraded in another way is not
        a false positive when the photo's clean copy has it too (the photo itself is, say, dark);
        the clean copy's own flag still counts."""
        flagged = np.asarray(flag_issues(self.metrics, thresholds)[reason], dtype=bool)
        truth = self.kinds == reason
        false = flagged & ~truth
        if excuse:
            false &= ~((self.kinds != "clean") & flagged[self.clean_index])
        return int((flagged & truth).sum()), int(false.sum()), int((truth & ~flagged).sum())


# The thresholds each reason's rule reads, and the grid each is searched over. The JPEG grid is
# geometric, so a tie over a wide gap resolves to its geometric middle.
SEARCH: dict[tuple[str, ...], dict[str, np.ndarray]] = {
    ("blurry", "motion_blur"): {
        "blur_sharpness": np.round(np.arange(1.30, 2.31, 0.01), 3),
        "motion_directional": np.round(np.arange(0.04, 0.41, 0.005), 3),
    },
    ("dark",): {
        "dark_mean": np.round(np.arange(0.06, 0.40, 0.01), 3),
        "dark_p95": np.round(np.arange(0.20, 0.81, 0.01), 3),
    },
    ("overexposed",): {
        "bright_mean": np.round(np.arange(0.50, 0.96, 0.01), 3),
        "bright_clipped": np.round(np.arange(0.02, 0.61, 0.01), 3),
    },
    ("noisy",): {"noise_sigma": np.round(np.arange(1.0, 12.01, 0.1), 3)},
    ("heavily_compressed",): {"min_jpeg_quality": np.round(np.geomspace(11, 90, 60), 1)},
}


def calibrate(samples: list[Sample], start: QualityThresholds) -> QualityThresholds:
    """Grid search per reason (both blur kinds jointly) for the best summed F1 on these samples.

    Negatives are every image not degraded in that way (clean, or degraded otherwise), with flags
    inherited from the photo's clean copy excused (see Arrays.counts); rules that flag more than
    MAX_CLEAN_FLAG_RATE of the clean originals are not considered. Among tied grid points the one
    nearest the middle of the tied set is taken, so a threshold sits in the middle of a gap between
    the classes, not on its edge.
    """
    data = Arrays.of(samples)
    thresholds = start
    for reasons, grid in SEARCH.items():
        names = list(grid)
        points = np.array(np.meshgrid(*grid.values(), indexing="ij")).reshape(len(names), -1).T
        scores = np.empty(len(points))
        for i, point in enumerate(points):
            candidate = replace(thresholds, **dict(zip(names, map(float, point), strict=True)))
            flags = flag_issues(data.metrics, candidate)
            clean_rate = max(float(np.asarray(flags[r])[data.kinds == "clean"].mean()) for r in reasons)
            # Ordinary photos must mostly pass: a rule flagging many clean originals is out.
            fine = clean_rate <= MAX_CLEAN_FLAG_RATE
            scores[i] = sum(_f1(*data.counts(candidate, r)) for r in reasons) if fine else -1.0
        tied = points[scores >= scores.max() - 1e-9]
        geometric = "min_jpeg_quality" in names
        space = np.log(tied) if geometric else tied
        steps = np.array([1.0 if geometric else grid[n][1] - grid[n][0] for n in names])
        middle = np.median(space, axis=0)
        chosen = tied[np.argmin((np.abs(space - middle) / steps).sum(axis=1))]
        thresholds = replace(thresholds, **dict(zip(names, map(float, chosen), strict=True)))
    return thresholds


# --------------------------------------------------------------------------- reporting


def reason_table(samples: list[Sample], thresholds: QualityThresholds) -> list[str]:
    data = Arrays.of(samples)
    lines = [
        "| reason | precision | precision, all flags | recall | F1 | flagged / degraded |",
        "|---|---|---|---|---|---|",
    ]
    for reason in DEGRADATIONS:
        tp, fp, fn = data.counts(thresholds, reason)
        _, fp_all, _ = data.counts(thresholds, reason, excuse=False)
        lines.append(
            f"| {reason} | {tp / max(1, tp + fp):.2f} | {tp / max(1, tp + fp_all):.2f} | "
            f"{tp / max(1, tp + fn):.2f} | {_f1(tp, fp, fn):.2f} | {tp + fp_all} / {tp + fn} |"
        )
    # Either blur reason on a blurred photo (the lenient reading of the blur kinds).
    flags = flag_issues(data.metrics, thresholds)
    any_blur = np.asarray(flags["blurry"], dtype=bool) | np.asarray(flags["motion_blur"], dtype=bool)
    truth = np.isin(data.kinds, list(BLUR))
    false = any_blur & ~truth & ~((data.kinds != "clean") & any_blur[data.clean_index])
    tp, fp, fn = int((any_blur & truth).sum()), int(false.sum()), int((truth & ~any_blur).sum())
    fp_all = int((any_blur & ~truth).sum())
    lines.append(
        f"| any blur (lenient) | {tp / max(1, tp + fp):.2f} | {tp / max(1, tp + fp_all):.2f} | "
        f"{tp / max(1, tp + fn):.2f} | {_f1(tp, fp, fn):.2f} | {tp + fp_all} / {tp + fn} |"
    )
    return lines


def confusion(samples: list[Sample], thresholds: QualityThresholds) -> list[str]:
    reasons = [r for r in ISSUES if r != "low_resolution"]
    lines = ["| degradation | n | " + " | ".join(reasons) + " | none |", "|---" * (len(reasons) + 3) + "|"]
    for kind in KINDS:
        group = [set(judge(s.metrics, thresholds)[0]) - {"low_resolution"} for s in samples if s.kind == kind]
        cells = [f"{sum(r in g for g in group)}" for r in reasons]
        lines.append(f"| {kind} | {len(group)} | " + " | ".join(cells) + f" | {sum(not g for g in group)} |")
    return lines


def score_order(samples: list[Sample], thresholds: QualityThresholds) -> float:
    """Share of (clean, degraded) pairs of the same photo where the clean copy scores higher."""
    by_photo: dict[str, dict[str, float]] = {}
    for s in samples:
        by_photo.setdefault(s.photo, {})[s.kind] = judge(s.metrics, thresholds)[1]
    pairs = [(v["clean"], v[k]) for v in by_photo.values() for k in DEGRADATIONS if k in v]
    return sum(a > b for a, b in pairs) / max(1, len(pairs))


def real_set(
    folder: Path, thresholds: QualityThresholds
) -> tuple[list[str], dict[str, list[tuple[bool, bool]]]]:
    """Per-photo table, and per label a (strict, lenient) correctness pair for each photo.

    Strict: the blur kind and dark flags are exactly what the label says (sharp: none of them).
    Lenient: blurred or not, and dark or not, are right (motion blur called blurry is fine).
    """
    truth: dict[str, dict] = json.loads((folder / "ground_truth.json").read_text())
    lines = [
        "| file | label | score | issues | sharpness, softest dir. | directional softness | mean luma |",
        "|---" * 7 + "|",
    ]
    outcome: dict[str, list[tuple[bool, bool]]] = {}
    for name, entry in sorted(truth.items()):
        data = (folder / "images" / name).read_bytes()
        image = load_oriented(data, max_side=ANALYSIS_MAX_SIDE)
        with Image.open(io.BytesIO(data)) as raw:
            size = raw.size
        metrics = measure_quality(image, jpeg_quant_tables=_tables(data), original_size=size)
        issues, score = judge(metrics, thresholds)
        expected = REAL_EXPECTED.get(entry["label"], set())
        found = set(issues) & {"blurry", "motion_blur", "dark"}
        strict = found == expected
        lenient = bool(found & BLUR) == bool(expected & BLUR) and ("dark" in found) == ("dark" in expected)
        outcome.setdefault(entry["label"], []).append((strict, lenient))
        sharp, directional = (
            metrics.get("edge_sharpness_min_dir", np.nan),
            metrics.get("directional_softness", np.nan),
        )
        lines.append(
            f"| {name} | {entry['label']} | {score:.1f} | {', '.join(issues) or '-'} | "
            f"{sharp:.2f} | {directional:.2f} | {metrics['mean_luminance']:.2f} |"
        )
    return lines, outcome


def real_timing(folder: Path, side: int = 1024, repeats: int = 5) -> tuple[float, str]:
    """Median assess_quality time (ms) on the real set's photos downscaled to `side`, and their size."""
    times: list[float] = []
    sizes: set[str] = set()
    for path in _photo_paths(folder):
        image = load_oriented(path.read_bytes(), max_side=side)
        sizes.add(f"{image.size[0]}x{image.size[1]}")
        for _ in range(repeats):
            started = time.perf_counter()
            assess_quality(image)
            times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000), ", ".join(sorted(sizes))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("quality_folder", type=Path)
    parser.add_argument("sharp_folders", type=Path, nargs="+")
    parser.add_argument("--limit", type=int, default=100, help="photos per sharp folder (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--write-thresholds", action="store_true", help=f"store calibrated values in {THRESHOLDS_PATH.name}"
    )
    parser.add_argument("--dump-metrics", type=Path, help="write every degraded image's metrics to this CSV")
    args = parser.parse_args()

    samples, times = build_degraded(args.sharp_folders, args.limit, args.seed)
    calibration = [s for s in samples if s.split == "calibration"]
    holdout = [s for s in samples if s.split == "holdout"]
    current = QualityThresholds.load()
    calibrated = calibrate(calibration, QualityThresholds())
    if args.dump_metrics:
        keys = sorted({k for s in samples for k in s.metrics})
        with args.dump_metrics.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["photo", "kind", "split", *keys])
            for s in samples:
                writer.writerow(
                    [s.photo, s.kind, s.split, *(f"{s.metrics.get(k, float('nan')):.5g}" for k in keys)]
                )
    if args.write_thresholds:
        names = [f"{folder.name}" for folder in args.sharp_folders]
        payload = {
            "_source": (
                f"bench/eval_quality.py --seed {args.seed} --limit {args.limit} on {', '.join(names)}, "
                f"calibration half ({len({s.photo for s in calibration})} photos), {date.today().isoformat()}"
            ),
            "_note": "min_megapixels and min_short_side are a documented product choice, not calibrated",
            "thresholds": asdict(calibrated),
        }
        THRESHOLDS_PATH.write_text(json.dumps(payload, indent=2) + "\n")
        current = calibrated

    changed = {
        f.name: (getattr(current, f.name), getattr(calibrated, f.name))
        for f in fields(QualityThresholds)
        if abs(getattr(current, f.name) - getattr(calibrated, f.name)) > 1e-9
    }
    out: list[str] = []
    out.append(
        f"Degraded set: {len({s.photo for s in samples})} photos x {len(KINDS)} versions "
        f"({len(calibration)} calibration / {len(holdout)} held-out images), seed {args.seed}."
    )
    out.append("")
    out.append("### Thresholds in use (services/quality/quality_thresholds.json)")
    out.append("")
    out.append("| threshold | value |")
    out.append("|---|---|")
    out += [f"| {f.name} | {getattr(current, f.name):g} |" for f in fields(QualityThresholds)]
    if changed:
        out.append("")
        out.append(f"Note: this run's calibration would choose different values: {changed}")
    out.append("")
    out.append("### Held-out degraded photos, per reason")
    out.append("")
    out += reason_table(holdout, current)
    out.append("")
    out.append("Rows: what was done to the photo; columns: how many got each flag (held-out half).")
    out.append("")
    out += confusion(holdout, current)
    out.append("")
    out.append(f"Clean copy scores above its degraded copy: {score_order(holdout, current):.2f} of pairs.")
    out.append("")
    out.append("### Calibration half (for comparison)")
    out.append("")
    out += reason_table(calibration, current)
    out.append("")
    lines, outcome = real_set(args.quality_folder, current)
    out.append(f"### Real set: {args.quality_folder}")
    out.append("")
    out += lines
    out.append("")
    out.append("| label | photos | strict | lenient |")
    out.append("|---|---|---|---|")
    for label, results in sorted(outcome.items()):
        out.append(
            f"| {label} | {len(results)} | {sum(s for s, _ in results)} | {sum(v for _, v in results)} |"
        )
    every = [r for results in outcome.values() for r in results]
    out.append(
        f"| all | {len(every)} | {sum(s for s, _ in every) / len(every):.2f} | "
        f"{sum(v for _, v in every) / len(every):.2f} |"
    )
    out.append("")
    out.append("Strict: exactly the blur kind and dark flags the label implies; lenient: blurred or not and")
    out.append("dark or not right (motion blur called blurry passes). Other flags are not scored here.")
    out.append("")
    ms = np.array(times) * 1000
    real_ms, real_sizes = real_timing(args.quality_folder)
    out.append(
        f"Time per photo: assess_quality on the real set at 1024 px ({real_sizes}): median {real_ms:.1f} ms; "
        f"measure_quality on the degraded set (500-640 px): median {np.median(ms):.1f} ms, "
        f"p95 {np.percentile(ms, 95):.1f} ms."
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()
