"""Quality flags: per-reason precision and recall on degraded real photos, and accuracy on a real set.

Usage: .venv/bin/python bench/eval_quality.py QUALITY_FOLDER SHARP_FOLDER [SHARP_FOLDER ...] [--limit N]

QUALITY_FOLDER has the testdata/quality layout (images/ + ground_truth.json with labels sharp,
defocus_blur, motion_blur, dark). SHARP_FOLDERs hold ordinary, well-exposed photos (e.g. the
captions or detection sets): each is degraded in known ways (Gaussian blur, motion blur, darkening,
over-exposure, noise, JPEG quality 10) and the flags are scored against what was done to it.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from services.images import load_oriented  # noqa: E402
from services.quality import assess_quality, jpeg_tables  # noqa: E402

REAL_EXPECTED = {"sharp": set(), "defocus_blur": {"blurry"}, "motion_blur": {"motion_blur"}, "dark": {"dark"}}
BLUR_ISSUES = {"blurry", "motion_blur"}


def motion_blur(image: Image.Image, length: int, angle: float) -> Image.Image:
    kernel = np.zeros((length, length))
    kernel[length // 2, :] = 1.0
    kernel = ndimage.rotate(kernel, angle, reshape=False, order=1)
    kernel /= kernel.sum()
    pixels = np.asarray(image, dtype=np.float64)
    out = np.stack([ndimage.convolve(pixels[..., c], kernel) for c in range(3)], axis=-1)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def degrade(image: Image.Image, kind: str, rng: random.Random) -> tuple[Image.Image, bytes | None]:
    scale = max(image.size) / 768
    if kind == "blurry":
        return image.filter(ImageFilter.GaussianBlur(rng.uniform(2.0, 4.0) * scale)), None
    if kind == "motion_blur":
        return motion_blur(image, int(rng.uniform(11, 21) * scale) | 1, rng.uniform(0, 180)), None
    pixels = np.asarray(image, dtype=np.float64) / 255.0
    if kind == "dark":
        out = pixels ** rng.uniform(2.2, 3.0) * rng.uniform(0.35, 0.6)
    elif kind == "overexposed":
        out = pixels * 2 ** rng.uniform(1.5, 2.5)
    elif kind == "noisy":
        out = pixels + np.random.default_rng(rng.randrange(1 << 30)).normal(
            0, rng.uniform(10, 25) / 255, pixels.shape
        )
    elif kind == "heavily_compressed":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=10)
        data = buffer.getvalue()
        return Image.open(io.BytesIO(data)).convert("RGB"), data
    else:
        return image, None
    return Image.fromarray((np.clip(out, 0, 1) * 255).astype(np.uint8)), None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("quality_folder", type=Path)
    parser.add_argument("sharp_folders", type=Path, nargs="+")
    parser.add_argument("--limit", type=int, default=30, help="photos per sharp folder")
    args = parser.parse_args()

    print("## Real photos")
    truth = json.loads((args.quality_folder / "ground_truth.json").read_text())
    strict = lenient = 0
    for name, entry in sorted(truth.items()):
        data = (args.quality_folder / "images" / name).read_bytes()
        result = assess_quality(load_oriented(data, max_side=1280), jpeg_quant_tables=jpeg_tables(data))
        expected = REAL_EXPECTED.get(entry["label"], set())
        found = set(result.issues) - {"low_resolution", "heavily_compressed"}
        strict += found == expected
        lenient += (bool(found & BLUR_ISSUES) == bool(expected & BLUR_ISSUES)) and (
            ("dark" in found) == ("dark" in expected)
        )
        print(f"{name}: {entry['label']:13s} score {result.score:5.1f} issues {result.issues}")
    print(f"real set: exact {strict / len(truth):.2f}, blur-or-not + dark {lenient / len(truth):.2f}")

    kinds = ["clean", "blurry", "motion_blur", "dark", "overexposed", "noisy", "heavily_compressed"]
    rng = random.Random(0)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    clean_flagged = total = 0
    elapsed = 0.0
    for folder in args.sharp_folders:
        images = folder / "images" if (folder / "images").is_dir() else folder
        for path in sorted(images.glob("*.jpg"))[: args.limit]:
            original = load_oriented(path.read_bytes(), max_side=1280)
            for kind in kinds:
                image, data = degrade(original, kind, rng)
                started = time.perf_counter()
                result = assess_quality(image, jpeg_quant_tables=jpeg_tables(data) if data else None)
                elapsed += time.perf_counter() - started
                total += 1
                found = set(result.issues) - {"low_resolution"}
                if kind == "clean":
                    clean_flagged += bool(found - {"heavily_compressed"})
                for issue in kinds[1:]:
                    if issue == kind and issue in found:
                        counts[issue]["tp"] += 1
                    elif issue == kind:
                        counts[issue]["fn"] += 1
                    elif issue in found:
                        counts[issue]["fp"] += 1
    print("\n## Degraded real photos")
    print("| reason | precision | recall |")
    print("|---|---|---|")
    for issue in kinds[1:]:
        c = counts[issue]
        precision = c["tp"] / max(1, c["tp"] + c["fp"])
        recall = c["tp"] / max(1, c["tp"] + c["fn"])
        print(f"| {issue} | {precision:.2f} | {recall:.2f} |")
    per_photo_ms = elapsed / total * 1000
    print(f"clean photos with a flag: {clean_flagged}/{total // len(kinds)}; {per_photo_ms:.0f} ms per photo")


if __name__ == "__main__":
    main()
