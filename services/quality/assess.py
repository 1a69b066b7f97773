"""Photo quality: a 0-100 score with the reasons behind it, from measurements a person can check.

Pure functions on an in-memory, upright PIL image (no DB, no HTTP); the analysis job passes its
downscaled copy plus what only the original file knows (JPEG quantisation tables, pixel size).

How blur is measured:
* The grey image is analysed at min(native, 1024) px long side (never upscaled), so a phone photo
  is judged at a typical screen scale and a small photo at its own pixel scale.
* A 3-level 2x2-mean pyramid is built and, per 64 px tile, the gradient structure tensor
  J = mean([[gx^2, gx gy], [gx gy, gy^2]]) at each level. The gradient energy of a level over the
  next coarser one (same pixel units) is ~1 where the content is already smooth at that scale and
  >= 2 for step edges and fine texture. This re-blur ratio barely depends on scene contrast, which
  a raw Laplacian variance does (that one is reported, on a fixed 512 px copy, but not used).
* Per direction (generalised eigenvalues of the fine vs the coarse tensor) the same ratio gives the
  sharpness across the softest direction (`edge_sharpness_min_dir`): low for any blur. Anisotropic
  scene content (a fence, floor tiles) cancels because both scales see it.
* Motion vs defocus: per tile, the anisotropy of those ratios and the direction of least detail.
  Camera shake softens every tile along the same direction, so the anisotropies add up as vectors
  (`directional_softness`, a mean of doubled-angle phasors); defocus has little anisotropy, and scene
  content points every which way and cancels.
* The most detailed quarter of the tiles decides, so a sharp subject on a bokeh background is not
  blurry; with face boxes, the largest face (if >= 32 px) decides.
Noise is Immerkaer's estimator on the flattest pixels; exposure reads the luma histogram; compression
reads the original JPEG's quantisation tables; resolution reads the original's pixel size.
Thresholds come from bench/eval_quality.py (calibration split of degraded real photos) and live in
quality_thresholds.json beside this file.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from services.inference.tensors import laplacian_variance

ISSUES: tuple[str, ...] = (
    "blurry",
    "motion_blur",
    "dark",
    "overexposed",
    "noisy",
    "low_resolution",
    "heavily_compressed",
)

WORK_LONG_SIDE = 1024  # blur, exposure and noise are judged per pixel at this long side (never upscaled)
LAPLACIAN_LONG_SIDE = 512  # fixed scale of the reported Laplacian variance, so it is size-independent
TILE_L2 = 16  # tile side in level-2 pyramid pixels (= 64 px at the analysis scale)
DETAIL_SHARE = 0.25  # share of tiles, the most detailed ones, that decide the sharpness
FLAT_SHARE = 0.1  # share of pixels, the flattest by gradient, on which noise is estimated
MIN_FACE_PX = 32  # smaller faces are too small to judge their sharpness
SHADOW_LEVEL = 20  # grey level counted as deep shadow (<=)
HIGHLIGHT_LEVEL = 250  # grey level counted as blown highlight (>=)

THRESHOLDS_PATH = Path(__file__).with_name("quality_thresholds.json")


@dataclass(frozen=True)
class QualityThresholds:
    """Decision thresholds. Defaults are overridden by quality_thresholds.json (calibrated)."""

    # Defaults equal the calibrated values in quality_thresholds.json (which wins when present).
    blur_sharpness: float = 1.77  # edge sharpness across the softest direction below this: blurred
    motion_directional: float = 0.125  # ... and directional softness at least this: the blur is motion
    dark_mean: float = 0.37  # mean luminance (0..1) below this ...
    dark_p95: float = 0.53  # ... and the bright end (95th percentile) below this: dark
    bright_mean: float = 0.79  # mean luminance above this ...
    bright_clipped: float = 0.10  # ... or this share of blown (>= 250) pixels: overexposed
    noise_sigma: float = 6.4  # noise (grey levels at the analysis scale) above this: noisy
    min_jpeg_quality: float = 28.8  # libjpeg-equivalent quality below this: heavily compressed
    # Low resolution is a product choice, not calibrated: smaller than about 800x600 (0.5 MP), or a
    # short side under 360 px (thin panorama strips), is too small to print or view full-screen.
    min_megapixels: float = 0.5  # original below this many megapixels ...
    min_short_side: float = 360.0  # ... or with a shorter side than this: low resolution

    @classmethod
    def load(cls, path: Path = THRESHOLDS_PATH) -> QualityThresholds:
        if not path.is_file():
            return cls()
        data: dict[str, Any] = json.loads(path.read_text())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: float(v) for k, v in data.get("thresholds", {}).items() if k in known})


QUALITY_THRESHOLDS = QualityThresholds.load()


@dataclass
class QualityResult:
    score: float
    issues: list[str]
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"score": self.score, "issues": self.issues, "metrics": self.metrics}


# --------------------------------------------------------------------------- JPEG tables

# ITU T.81 Annex K tables in natural (row-major) order, the order Pillow's `image.quantization` uses.
_STD_LUMA = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61,
        12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77,
        24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.float64,
)  # fmt: skip
_STD_CHROMA_BLOCK = np.full((8, 8), 99.0)
_STD_CHROMA_BLOCK[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
_STD_CHROMA = _STD_CHROMA_BLOCK.ravel()


def _libjpeg_tables(quality: np.ndarray, std: np.ndarray) -> np.ndarray:
    """libjpeg's jpeg_set_quality scaling for each quality -> (len(quality), 64), baseline-clamped."""
    q = np.clip(quality, 1, 100).astype(np.float64)
    scale = np.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
    return np.asarray(np.clip(np.floor((std[None, :] * scale[:, None] + 50.0) / 100.0), 1, 255))


_Q_GRID = np.arange(1, 101, dtype=np.float64)
_LOG_LUMA = np.log(_libjpeg_tables(_Q_GRID, _STD_LUMA))
_LOG_CHROMA = np.log(_libjpeg_tables(_Q_GRID, _STD_CHROMA))


def jpeg_quality_from_tables(
    tables: Mapping[int, Sequence[int]] | Sequence[Sequence[int]] | None,
) -> float | None:
    """Estimate the libjpeg quality (1-100) that would produce these quantisation tables.

    Compares the luminance table (and the first chroma table, at half weight) with libjpeg's scaled
    Annex K tables in log space, over all 100 qualities, and refines the best one with a parabola.
    A camera's custom tables get the nearest libjpeg equivalent. None when no usable table is given.
    """
    if not tables:
        return None
    seq = [tables[k] for k in sorted(tables)] if isinstance(tables, Mapping) else list(tables)
    luma = np.asarray(seq[0], dtype=np.float64).ravel()
    if luma.size != 64:
        return None
    err = np.abs(_LOG_LUMA - np.log(np.clip(luma, 1, None))).mean(axis=1)
    if len(seq) > 1:
        chroma = np.asarray(seq[1], dtype=np.float64).ravel()
        if chroma.size == 64:
            err = err + 0.5 * np.abs(_LOG_CHROMA - np.log(np.clip(chroma, 1, None))).mean(axis=1)
    best = int(np.argmin(err))
    if 0 < best < len(_Q_GRID) - 1:
        e0, e1, e2 = err[best - 1], err[best], err[best + 1]
        curvature = e0 - 2 * e1 + e2
        offset = 0.5 * (e0 - e2) / curvature if curvature > 1e-12 else 0.0
        return float(np.clip(_Q_GRID[best] + np.clip(offset, -0.5, 0.5), 1, 100))
    return float(_Q_GRID[best])


# --------------------------------------------------------------------------- measurements


def jpeg_tables(data: bytes) -> dict[int, list[int]] | None:
    """Quantisation tables of a JPEG file (Pillow's natural order), or None for anything else."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                return None
            return {int(k): list(v) for k, v in image.quantization.items()}  # type: ignore[attr-defined]
    except Exception:  # undecodable or truncated: no tables, the caller reports the damage elsewhere
        return None


def _grey(image: Image.Image, long_side: int, upscale: bool = False) -> np.ndarray:
    """Grey float32 copy whose long side is `long_side` (only shrunk unless `upscale`)."""
    grey = image.convert("L")
    w, h = grey.size
    scale = long_side / max(w, h)
    if scale < 1 or (upscale and scale > 1):
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        grey = grey.resize(size, Image.Resampling.BOX, reducing_gap=3.0 if scale < 1 else None)
    return np.asarray(grey, dtype=np.float32)


def _half(a: np.ndarray) -> np.ndarray:
    """2x2 mean: the next pyramid level."""
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    a = a[:h, :w]
    return np.asarray(0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]))


def _tile_tensors(level: np.ndarray, th: int, tw: int, nty: int, ntx: int) -> np.ndarray:
    """Per-tile mean gradient structure tensor (xx, yy, xy) -> (3, nty, ntx), float64."""
    gx = 0.5 * (level[1:-1, 2:] - level[1:-1, :-2])[: nty * th, : ntx * tw]
    gy = 0.5 * (level[2:, 1:-1] - level[:-2, 1:-1])[: nty * th, : ntx * tw]
    out = np.empty((3, nty, ntx), dtype=np.float64)
    for i, prod in enumerate((gx * gx, gy * gy, gx * gy)):
        out[i] = prod.reshape(nty, th, ntx, tw).mean(axis=(1, 3), dtype=np.float64)
    return out


def _generalised_ratios(
    fine: np.ndarray, coarse: np.ndarray, noise_fine: float, noise_coarse: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest and smallest directional energy ratio fine/coarse, and the direction of the smallest.

    These are the generalised eigenvalues of (J_fine, J_coarse). The expected white-noise share is
    removed from both tensors first, then a small isotropic term proportional to each trace is added,
    so a direction with no content falls back to the mean ratio instead of dividing noise by noise.
    """
    axx = np.maximum(fine[0] - noise_fine, 1e-6)
    ayy = np.maximum(fine[1] - noise_fine, 1e-6)
    bxx = np.maximum(coarse[0] - noise_coarse, 1e-6)
    byy = np.maximum(coarse[1] - noise_coarse, 1e-6)
    axy, bxy = fine[2], coarse[2]
    ra, rb = 0.05 * (axx + ayy), 0.05 * (bxx + byy)
    axx, ayy, bxx, byy = axx + ra, ayy + ra, bxx + rb, byy + rb
    # Keep the tensors positive definite after the noise subtraction.
    axy = np.clip(axy, -0.99 * np.sqrt(axx * ayy), 0.99 * np.sqrt(axx * ayy))
    bxy = np.clip(bxy, -0.99 * np.sqrt(bxx * byy), 0.99 * np.sqrt(bxx * byy))
    # det(A - l B) = 0  ->  qa l^2 + qb l + qc = 0
    qa = bxx * byy - bxy * bxy
    qb = -(axx * byy + ayy * bxx - 2 * axy * bxy)
    qc = axx * ayy - axy * axy
    disc = np.sqrt(np.maximum(qb * qb - 4 * qa * qc, 0.0))
    lmax = (-qb + disc) / (2 * qa)
    lmin = np.maximum((-qb - disc) / (2 * qa), 1e-6)
    # Direction of least fine-scale detail = direction of the motion (null vector of A - lmin B).
    angle = np.degrees(np.arctan2(axx - lmin * bxx, -(axy - lmin * bxy))) % 180.0
    return lmax, lmin, angle


def _blur_measures(
    grey: np.ndarray, noise: float, tile_l2: int = TILE_L2, detail_share: float = DETAIL_SHARE
) -> dict[str, float]:
    """Re-blur ratios on a 3-level pyramid, per tile and per direction (see the module docstring).

    Tiles are `tile_l2` level-2 pixels square (4x that at the analysis scale); empty when the
    image is too small to hold one.
    """
    l0 = grey
    l1 = _half(l0)
    l2 = _half(l1)
    inner = min(l2.shape) - 2
    if inner < 4:
        return {}
    tile = min(tile_l2, inner)
    nty, ntx = (l2.shape[0] - 2) // tile, (l2.shape[1] - 2) // tile
    j0 = _tile_tensors(l0, tile * 4, tile * 4, nty, ntx)
    j1 = _tile_tensors(l1, tile * 2, tile * 2, nty, ntx)
    j2 = _tile_tensors(l2, tile, tile, nty, ntx)
    return _ratios_from_tensors(j0, j1, j2, noise, detail_share)


def _ratios_from_tensors(
    j0: np.ndarray, j1: np.ndarray, j2: np.ndarray, noise: float, detail_share: float
) -> dict[str, float]:
    s2 = noise * noise
    # Coarser gradients re-expressed per level-0 pixel (a level-k pixel spans 2^k level-0 pixels).
    j1_0, j2_1 = j1 / 4.0, j2 / 4.0
    # White noise of variance s2: central-difference variance s2/2 at level 0; each 2x2 mean quarters
    # it (s2/8 at level 1, s2/32 at level 2), and the unit change divides by 4 again.
    n0, n1, n2 = s2 / 2, s2 / 8, s2 / 32

    # The most detailed tiles speak for the photo: the top quarter by coarse gradient energy (at least
    # 3 tiles). A sharp subject on a smooth bokeh background is judged by the subject, and flat tiles,
    # whose ratios are dominated by 8-bit quantisation and JPEG noise, are left out.
    energy = (j2[0] + j2[1]).ravel()
    count = min(energy.size, max(3, math.ceil(energy.size * detail_share)))
    chosen = np.argsort(energy)[::-1][:count]

    def pooled(j: np.ndarray) -> np.ndarray:
        return np.asarray(j.reshape(3, -1)[:, chosen].mean(axis=1)[:, None])

    max01, min01, angle = _generalised_ratios(pooled(j0), pooled(j1_0), n0, n1 / 4)
    max12, min12, _ = _generalised_ratios(pooled(j1), pooled(j2_1), n1, n2 / 4)

    # Per-tile soft direction: camera shake softens every tile along the same direction, defocus along
    # none, and scene content along whatever its edges happen to do (incoherent across tiles).
    def tiles(j: np.ndarray) -> np.ndarray:
        return j.reshape(3, -1)[:, chosen]

    tmax01, tmin01, tang = _generalised_ratios(tiles(j0), tiles(j1_0), n0, n1 / 4)
    tmax12, tmin12, _ = _generalised_ratios(tiles(j1), tiles(j2_1), n1, n2 / 4)
    # Capped: a near-flat tile can report any ratio, and one must not outvote the rest.
    tile_aniso = np.minimum(np.sqrt((tmax01 / tmin01) * (tmax12 / tmin12)), 3.0) - 1.0
    phasor = np.exp(2j * np.radians(tang))
    coherence = float(np.abs((tile_aniso * phasor).sum()) / max(tile_aniso.sum(), 1e-9))
    directional = float(np.abs((tile_aniso * phasor).mean()))
    # Geometric mean of both scale pairs, so blur of 1 to 4+ px at the analysis scale registers.
    sharp_max = math.sqrt(max01[0] * max12[0])
    sharp_min = math.sqrt(min01[0] * min12[0])
    return {
        "edge_sharpness": sharp_max,
        "edge_sharpness_min_dir": sharp_min,
        "sharpness_fine": float(max01[0]),
        "sharpness_coarse": float(max12[0]),
        "motion_anisotropy": sharp_max / sharp_min,
        "motion_angle_deg": float(angle[0]),
        "detail_energy": float(energy[chosen].mean()),
        "direction_coherence": coherence,
        "directional_softness": directional,
    }


def noise_sigma(grey: np.ndarray) -> float:
    """Immerkaer's fast noise estimate on low-gradient, unclipped pixels (texture is not noise).

    For white noise the Immerkaer operator (even kernel) and central-difference gradients (odd
    kernels) are independent, so choosing flat pixels by gradient does not bias the estimate.
    """
    g = grey
    if min(g.shape) < 8:
        return 0.0
    c = g[1:-1, 1:-1]
    lap = (
        4 * c
        - 2 * (g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:])
        + (g[:-2, :-2] + g[:-2, 2:] + g[2:, :-2] + g[2:, 2:])
    )
    grad = np.abs(g[1:-1, 2:] - g[1:-1, :-2]) + np.abs(g[2:, 1:-1] - g[:-2, 1:-1])
    # Clipped black or white areas carry no measurable noise and would pull the estimate down.
    usable = (c > 3) & (c < 252)
    vals, gsel = np.abs(lap[usable]), grad[usable]
    if vals.size < 64:
        return 0.0
    rank = int(gsel.size * FLAT_SHARE)
    cut = np.partition(gsel, rank)[rank]
    flat = vals[gsel <= cut]
    # The responses are integers (8-bit input): a grouped median, interpolated inside its bin, keeps the
    # estimate continuous instead of jumping in steps of 1/(0.6745 * 6) grey levels.
    counts = np.bincount(np.minimum(flat, 1023).astype(np.int64))
    cum = np.cumsum(counts)
    half = 0.5 * cum[-1]
    k = int(np.searchsorted(cum, half))
    below = cum[k - 1] if k > 0 else 0
    median = max(0.0, k - 0.5 + (half - below) / max(counts[k], 1))
    # The Immerkaer kernel's squared taps sum to 36; median(|N(0, s)|) = 0.6745 s.
    return float(median / (0.6745 * 6.0))


def _laplacian_variance(image: Image.Image) -> float:
    return laplacian_variance(_grey(image, LAPLACIAN_LONG_SIDE, upscale=True))


def _largest_face(grey: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray | None:
    """Crop of the largest face (normalised x, y, w, h) if it is big enough to judge (>= 32 px)."""
    height, width = grey.shape
    best: tuple[float, tuple[int, int, int, int]] | None = None
    for box in boxes:
        x, y, w, h = (float(v) for v in box[:4])
        x0, y0 = max(0, int(x * width)), max(0, int(y * height))
        x1, y1 = min(width, int((x + w) * width)), min(height, int((y + h) * height))
        area = float((x1 - x0) * (y1 - y0))
        if x1 - x0 >= MIN_FACE_PX and y1 - y0 >= MIN_FACE_PX and (best is None or area > best[0]):
            best = (area, (x0, y0, x1, y1))
    if best is None:
        return None
    x0, y0, x1, y1 = best[1]
    return grey[y0:y1, x0:x1]


def measure_quality(
    image: Image.Image,
    *,
    jpeg_quant_tables: Mapping[int, Sequence[int]] | None = None,
    original_size: tuple[int, int] | None = None,
    face_boxes: Sequence[Sequence[float]] | None = None,
) -> dict[str, float]:
    """All raw metrics behind the verdict (no thresholds applied)."""
    grey = _grey(image, WORK_LONG_SIDE)
    metrics: dict[str, float] = {}
    noise = noise_sigma(grey)
    metrics["noise_sigma"] = noise
    metrics.update(_blur_measures(grey, noise))
    metrics["laplacian_variance"] = _laplacian_variance(image)
    hist = np.bincount(grey.astype(np.uint8).ravel(), minlength=256).astype(np.float64)
    hist /= max(hist.sum(), 1.0)
    cdf = np.cumsum(hist)
    metrics["mean_luminance"] = float(grey.mean(dtype=np.float64)) / 255.0
    metrics["luminance_p05"] = float(np.searchsorted(cdf, 0.05)) / 255.0
    metrics["luminance_median"] = float(np.searchsorted(cdf, 0.5)) / 255.0
    metrics["luminance_p95"] = float(np.searchsorted(cdf, 0.95)) / 255.0
    metrics["shadow_share"] = float(cdf[SHADOW_LEVEL])
    metrics["highlight_share"] = max(0.0, float(1.0 - cdf[HIGHLIGHT_LEVEL - 1]))
    if face_boxes:
        face = _largest_face(grey, face_boxes)
        if face is not None:
            # A 3x3 grid of tiles over the face, half of them (eyes, brows, hairline) deciding.
            face_tile = max(4, (min(face.shape) // 4 - 2) // 3)
            face_m = _blur_measures(face, noise, tile_l2=face_tile, detail_share=0.5)
            if face_m:
                metrics["face_edge_sharpness"] = face_m["edge_sharpness"]
                metrics["face_edge_sharpness_min_dir"] = face_m["edge_sharpness_min_dir"]
                metrics["face_directional_softness"] = face_m["directional_softness"]
    width, height = original_size or image.size
    metrics["megapixels"] = width * height / 1e6
    metrics["short_side_px"] = float(min(width, height))
    quality = jpeg_quality_from_tables(jpeg_quant_tables)
    if quality is not None:
        metrics["jpeg_quality"] = quality
    return metrics


# --------------------------------------------------------------------------- verdict


BLUR_KEYS = ("edge_sharpness", "edge_sharpness_min_dir", "directional_softness")


def blur_inputs(metrics: Mapping[str, float]) -> dict[str, float] | None:
    """The blur metrics that decide: the largest face's when it was measured, else the photo's.

    A face large enough to measure decides for the whole photo: a sharp face on a soft background is
    a good portrait, and a soft face on a sharp background is a missed focus.
    """
    for prefix in ("face_", ""):
        if all(prefix + k in metrics for k in BLUR_KEYS):
            return {k: metrics[prefix + k] for k in BLUR_KEYS}
    return None


def flag_issues(
    metrics: Mapping[str, Any], thresholds: QualityThresholds = QUALITY_THRESHOLDS
) -> dict[str, Any]:
    """Each issue's rule, elementwise: works on one photo's floats or on arrays of many (calibration).

    Blur metrics are read under the plain names; judge() substitutes the face's values when there is one.
    """
    t = thresholds
    m = {k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}
    # Blurred: soft across the softest direction. Motion when that softness lines up across the photo
    # (camera shake), otherwise defocus or an all-round blur.
    blurred = m["edge_sharpness_min_dir"] < t.blur_sharpness
    directional = m["directional_softness"] >= t.motion_directional
    jpeg_q = m.get("jpeg_quality", np.asarray(np.nan))
    return {
        "blurry": blurred & ~directional,
        "motion_blur": blurred & directional,
        # Dark: low mean and even the bright end dim (a night shot with lit windows is not "dark").
        "dark": (m["mean_luminance"] < t.dark_mean) & (m["luminance_p95"] < t.dark_p95),
        "overexposed": (m["mean_luminance"] > t.bright_mean) | (m["highlight_share"] > t.bright_clipped),
        "noisy": m["noise_sigma"] > t.noise_sigma,
        "low_resolution": (m["megapixels"] < t.min_megapixels) | (m["short_side_px"] < t.min_short_side),
        "heavily_compressed": np.nan_to_num(jpeg_q, nan=100.0) < t.min_jpeg_quality,
    }


def _ramp(value: float, bad: float, good: float) -> float:
    """0 at `bad`, 1 at `good`, linear and clipped in between (either direction)."""
    if good == bad:
        return float(value >= good)
    return float(min(1.0, max(0.0, (value - bad) / (good - bad))))


def judge(
    metrics: Mapping[str, float], thresholds: QualityThresholds = QUALITY_THRESHOLDS
) -> tuple[list[str], float]:
    """Issues (in ISSUES order) and the 0-100 score from measured metrics.

    Separate from measuring so calibration can re-judge cached metrics cheaply. The score falls
    continuously with softness, darkness, clipping, noise and compression (so a sharper shot of a
    scene outranks a softer one even when neither is flagged), and each flag costs a fixed amount
    on top.
    """
    t = thresholds
    view = dict(metrics)
    blur = blur_inputs(metrics)
    # Too small to measure blur: never flagged.
    view.update(
        blur or {"edge_sharpness": np.inf, "edge_sharpness_min_dir": np.inf, "directional_softness": 0.0}
    )
    flags = flag_issues(view, t)
    issues = [issue for issue in ISSUES if bool(flags[issue])]

    penalty = 10.0 * len(issues)
    if blur is not None:
        # 1.0 is "no detail finer than the coarsest level"; comfortably above the threshold is full marks.
        both = math.sqrt(max(blur["edge_sharpness"], 0.0) * max(blur["edge_sharpness_min_dir"], 0.0))
        penalty += 45.0 * (1.0 - _ramp(both, 1.0, 1.4 * t.blur_sharpness))
    mean = metrics["mean_luminance"]
    # Darkness is scored by the bright end: a normal photo has highlights, a dark one has none.
    penalty += 20.0 * (1.0 - _ramp(metrics["luminance_p95"], 0.5 * t.dark_p95, 1.3 * t.dark_p95))
    penalty += 20.0 * _ramp(max(mean, 0.0), t.bright_mean - 0.1, 1.0)
    penalty += 20.0 * _ramp(metrics["highlight_share"], 0.5 * t.bright_clipped, 2.0 * t.bright_clipped)
    penalty += 15.0 * _ramp(metrics["noise_sigma"], 0.5 * t.noise_sigma, 2.0 * t.noise_sigma)
    quality = metrics.get("jpeg_quality")
    if quality is not None:
        penalty += 10.0 * (1.0 - _ramp(quality, 1.0, t.min_jpeg_quality))
    return issues, round(max(0.0, 100.0 - penalty), 1)


def assess_quality(
    image: Image.Image,
    *,
    jpeg_quant_tables: Mapping[int, Sequence[int]] | None = None,
    original_size: tuple[int, int] | None = None,
    face_boxes: Sequence[Sequence[float]] | None = None,
    thresholds: QualityThresholds = QUALITY_THRESHOLDS,
) -> QualityResult:
    """Score one upright RGB photo and say what is wrong with it.

    `image` may be a downscaled copy (about 1024 px long side is plenty); `jpeg_quant_tables`
    (see jpeg_tables) and `original_size` describe the original file; `face_boxes` are normalised
    (x, y, w, h) boxes, of which the largest judges the blur.
    """
    metrics = measure_quality(
        image, jpeg_quant_tables=jpeg_quant_tables, original_size=original_size, face_boxes=face_boxes
    )
    issues, score = judge(metrics, thresholds)
    return QualityResult(score=score, issues=issues, metrics={k: round(v, 4) for k, v in metrics.items()})
