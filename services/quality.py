"""Photo quality: a 0-100 score with the reasons behind it, from measurements a person can check.

Every metric is computed on a fixed-size grey copy so the numbers mean the same for any resolution;
thresholds live in QUALITY_THRESHOLDS and were calibrated by bench/eval_quality.py on degraded and
real photos (see bench/reports/quality.md).
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

ISSUES = ("blurry", "motion_blur", "dark", "overexposed", "noisy", "low_resolution", "heavily_compressed")
ANALYSIS_SIDE = 768  # long side of the grey copy the blur, exposure and noise metrics see

# libjpeg's standard luminance quantisation table (quality 50), in natural order.
_STD_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip


@dataclass(frozen=True)
class QualityThresholds:
    edge_sharpness_blurry: float = 48.0  # strongest edges (range-relative, x fine/coarse) below this: blurred
    edge_sharpness_motion: float = 65.0  # below this and one-directional: motion blur
    motion_direction_ratio: float = 0.6  # weakest / strongest directional edge strength
    dark_mean: float = 0.22  # mean luminance (0..1) below this ...
    dark_shadow_share: float = 0.45  # ... or this share of pixels in deep shadow
    bright_mean: float = 0.80  # mean luminance above this ...
    clipped_highlights: float = 0.20  # ... or this share of pixels blown out
    noise_sigma: float = 6.0  # estimated noise (grey levels) above this: noisy
    min_megapixels: float = 0.3
    min_jpeg_quality: float = 35.0


QUALITY_THRESHOLDS = QualityThresholds()


@dataclass
class QualityResult:
    score: float
    issues: list[str]
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"score": self.score, "issues": self.issues, "metrics": self.metrics}


def _grey(image: Image.Image, side: int = ANALYSIS_SIDE) -> np.ndarray:
    grey = image.convert("L")
    if max(grey.size) > side:
        grey = grey.copy()
        grey.thumbnail((side, side), Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.float64)


def edge_sharpness(grey: np.ndarray) -> tuple[float, float, float]:
    """(score, edge strength, fine/coarse ratio) of the strongest edges.

    Edge strength is the 99.5th percentile gradient in grey levels per pixel; the ratio compares the
    gradient at full scale with the gradient after a sigma-2 blur on the strongest edges, which is near
    1 when the photo is already blurred. Their product separates sharp from blurred photos better than
    either alone, and better than a bare Laplacian variance, which mostly measures texture.
    """
    fine = _gradient(grey)
    coarse = _gradient(ndimage.gaussian_filter(grey, 2.0))
    # Relative to the photo's tonal range, so a dark or hazy photo is not taken for a blurred one.
    tonal_range = float(np.percentile(grey, 99) - np.percentile(grey, 1))
    strength = float(np.percentile(fine, 99.5)) * 255.0 / max(tonal_range, 32.0)
    edges = coarse >= max(float(np.percentile(coarse, 98)), 1.0)
    ratio = float(np.median(fine[edges] / (coarse[edges] + 1e-6))) if edges.sum() > 50 else 1.0
    return strength * ratio, strength, ratio


def _gradient(grey: np.ndarray) -> np.ndarray:
    return np.hypot(ndimage.sobel(grey, axis=1), ndimage.sobel(grey, axis=0)) / 8.0


def direction_ratio(grey: np.ndarray) -> float:
    """Weakest over strongest edge strength across four directions: motion blur leaves one direction
    soft (low ratio), defocus blurs every direction alike."""
    gx = ndimage.sobel(grey, axis=1) / 8.0
    gy = ndimage.sobel(grey, axis=0) / 8.0
    strengths = [
        float(np.percentile(np.abs(gx * np.cos(a) + gy * np.sin(a)), 99.5))
        for a in np.deg2rad([0, 45, 90, 135])
    ]
    return min(strengths) / (max(strengths) + 1e-9)


def laplacian_variance(grey: np.ndarray) -> float:
    return float(ndimage.laplace(grey).var())


def noise_sigma(grey: np.ndarray) -> float:
    """Immerkær's fast noise estimate, on flat areas only so texture is not taken for noise."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = np.abs(ndimage.convolve(grey, kernel))[1:-1, 1:-1]
    edges = np.hypot(ndimage.sobel(grey, axis=0), ndimage.sobel(grey, axis=1))[1:-1, 1:-1]
    flat = edges < np.percentile(edges, 50)
    if flat.sum() < 100:
        flat = np.ones_like(edges, dtype=bool)
    return float(np.sqrt(np.pi / 2) * response[flat].mean() / 6.0)


def jpeg_quality_from_tables(tables: dict[int, Sequence[int]] | None) -> float | None:
    """libjpeg quality (1-100) that would produce the luminance table, or None for non-JPEG."""
    if not tables or 0 not in tables:
        return None
    table = np.asarray(tables[0], dtype=np.float64)
    if table.size != 64:
        return None
    scale = float(np.mean(table * 100.0 / _STD_LUMA))
    quality = (200.0 - scale) / 2.0 if scale <= 100 else 5000.0 / scale
    return float(np.clip(quality, 1.0, 100.0))


def jpeg_tables(data: bytes) -> dict[int, Sequence[int]] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return dict(image.quantization) if image.format == "JPEG" else None  # type: ignore[attr-defined]
    except Exception:
        return None


def _face_region(grey: np.ndarray, box: Sequence[float]) -> np.ndarray | None:
    height, width = grey.shape
    x, y, w, h = box[:4]
    x0, y0 = int(max(0, x * width)), int(max(0, y * height))
    x1, y1 = int(min(width, (x + w) * width)), int(min(height, (y + h) * height))
    if x1 - x0 < 24 or y1 - y0 < 24:
        return None
    return grey[y0:y1, x0:x1]


def assess_quality(
    image: Image.Image,
    *,
    jpeg_quant_tables: dict[int, Sequence[int]] | None = None,
    original_size: tuple[int, int] | None = None,
    face_boxes: Sequence[Sequence[float]] | None = None,
    thresholds: QualityThresholds = QUALITY_THRESHOLDS,
) -> QualityResult:
    """Score one upright photo (any size; a ~1000 px copy is plenty) and say what is wrong with it."""
    grey = _grey(image)
    luminance = grey / 255.0
    score, strength, ratio = edge_sharpness(grey)
    metrics: dict[str, float] = {
        "edge_sharpness": score,
        "edge_strength": strength,
        "edge_ratio": ratio,
        "direction_ratio": direction_ratio(grey),
        "laplacian_variance": laplacian_variance(grey),
        "mean_luminance": float(luminance.mean()),
        "shadow_share": float((luminance < 0.08).mean()),
        "highlight_share": float((luminance > 0.97).mean()),
        "noise_sigma": noise_sigma(grey),
    }
    width, height = original_size or image.size
    metrics["megapixels"] = width * height / 1e6
    quality = jpeg_quality_from_tables(jpeg_quant_tables)
    if quality is not None:
        metrics["jpeg_quality"] = quality
    # A portrait is judged by its subject: a sharp face on a soft background is a good photo.
    regions = [r for r in (_face_region(grey, box) for box in face_boxes or []) if r is not None]
    if regions:
        largest = max(regions, key=lambda r: r.size)
        metrics["face_sharpness"] = edge_sharpness(largest)[0]
    judged_sharpness = metrics.get("face_sharpness", metrics["edge_sharpness"])

    issues: list[str] = []
    penalty = 0.0
    one_directional = metrics["direction_ratio"] < thresholds.motion_direction_ratio
    if judged_sharpness < thresholds.edge_sharpness_motion and one_directional:
        issues.append("motion_blur")
        penalty += 25 + 35 * max(0.0, 1.0 - judged_sharpness / thresholds.edge_sharpness_motion)
    elif judged_sharpness < thresholds.edge_sharpness_blurry:
        issues.append("blurry")
        penalty += 25 + 35 * (1.0 - judged_sharpness / thresholds.edge_sharpness_blurry)
    if (
        metrics["mean_luminance"] < thresholds.dark_mean
        or metrics["shadow_share"] > thresholds.dark_shadow_share
    ):
        issues.append("dark")
        penalty += 15 + 30 * max(0.0, 1 - metrics["mean_luminance"] / thresholds.dark_mean)
    if (
        metrics["mean_luminance"] > thresholds.bright_mean
        or metrics["highlight_share"] > thresholds.clipped_highlights
    ):
        issues.append("overexposed")
        penalty += 15 + 30 * min(1.0, metrics["highlight_share"])
    if metrics["noise_sigma"] > thresholds.noise_sigma:
        issues.append("noisy")
        penalty += 10 + min(20.0, 2 * (metrics["noise_sigma"] - thresholds.noise_sigma))
    if metrics["megapixels"] < thresholds.min_megapixels:
        issues.append("low_resolution")
        penalty += 10
    if quality is not None and quality < thresholds.min_jpeg_quality:
        issues.append("heavily_compressed")
        penalty += 10 + (thresholds.min_jpeg_quality - quality) / 2
    metrics = {key: round(value, 4) for key, value in metrics.items()}
    return QualityResult(score=round(max(0.0, 100.0 - penalty), 1), issues=issues, metrics=metrics)


def best_shot(candidates: Sequence[tuple[str, float | None, int, int]]) -> str:
    """Among near-duplicates (id, quality score, width, height): the best score, then the most pixels."""
    return max(candidates, key=lambda c: (c[1] if c[1] is not None else -1.0, c[2] * c[3]))[0]
