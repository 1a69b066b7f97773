"""Low-light enhancement: a brighter, clearer derived image with natural colours; the original is untouched.

Steps, all on float32 numpy arrays:
1. Split into luma (BT.601) and a chroma vector per pixel (RGB minus luma). Hue is the direction of
   that vector, so scaling it never changes hue.
2. Noise-aware denoising of luma: the fine detail (image minus a small Gaussian blur) is soft-
   thresholded at a multiple of the measured noise, so flat areas lose their grain before it is
   amplified, while edges, which exceed the threshold, stay. Chroma noise is smoothed more (the eye
   has low colour resolution).
3. Adaptive gamma lifts the mean luma towards TARGET_MEAN; then CLAHE (contrast-limited adaptive
   histogram equalisation, implemented here in vectorised numpy) restores local contrast, blended
   with the gamma result so it never looks harsh.
4. Chroma is scaled by the same per-pixel gain as luma (keeps saturation), and pulled back toward
   grey only where a channel would clip, which keeps the hue instead of clipping it.
"""

import numpy as np
from PIL import Image
from scipy import ndimage

from services.quality.assess import noise_sigma

TARGET_MEAN = 0.45  # mean luma the gamma aims for
MAX_LIFT = 0.3  # smallest gamma allowed (strongest lift)
CLAHE_TILES = 8  # tiles per side
CLAHE_CLIP = 2.0  # histogram clip, in multiples of the mean bin: caps local contrast stretch
CLAHE_WEIGHT = 0.5  # share of the CLAHE result in the final luma
DENOISE_K = 2.0  # detail below this many noise sigmas is treated as noise
MAX_CHROMA_GAIN = 6.0  # chroma of near-black pixels is mostly noise: do not amplify it further
BINS = 256
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _clahe(luma: np.ndarray, tiles: int = CLAHE_TILES, clip: float = CLAHE_CLIP) -> np.ndarray:
    """CLAHE of a 0..1 image: clipped per-tile histogram equalisation, bilinearly blended between tiles."""
    height, width = luma.shape
    tile_h, tile_w = -(-height // tiles), -(-width // tiles)
    levels = np.clip((luma * (BINS - 1) + 0.5).astype(np.int32), 0, BINS - 1)
    padded = np.pad(levels, ((0, tile_h * tiles - height), (0, tile_w * tiles - width)), mode="reflect")
    # All tile histograms in one bincount: index = tile id * BINS + level.
    rows = (np.arange(padded.shape[0], dtype=np.int32) // tile_h) * (tiles * BINS)
    cols = (np.arange(padded.shape[1], dtype=np.int32) // tile_w) * BINS
    hist = np.bincount((padded + rows[:, None] + cols[None, :]).ravel(), minlength=tiles * tiles * BINS)
    hist = hist.reshape(tiles * tiles, BINS).astype(np.float64)
    limit = clip * tile_h * tile_w / BINS
    excess = np.maximum(hist - limit, 0.0).sum(axis=1, keepdims=True)
    hist = np.minimum(hist, limit) + excess / BINS
    cdf = np.cumsum(hist, axis=1)
    maps = (cdf / cdf[:, -1:]).reshape(tiles, tiles, BINS).astype(np.float32)
    # Each pixel blends the mappings of the four tiles whose centres surround it.
    ty = np.clip((np.arange(height) + 0.5) / tile_h - 0.5, 0, tiles - 1)
    tx = np.clip((np.arange(width) + 0.5) / tile_w - 0.5, 0, tiles - 1)
    y0, x0 = ty.astype(np.int32), tx.astype(np.int32)
    y1, x1 = np.minimum(y0 + 1, tiles - 1), np.minimum(x0 + 1, tiles - 1)
    wy = (ty - y0).astype(np.float32)[:, None]
    wx = (tx - x0).astype(np.float32)[None, :]
    top = maps[y0[:, None], x0[None, :], levels] * (1 - wx) + maps[y0[:, None], x1[None, :], levels] * wx
    bottom = maps[y1[:, None], x0[None, :], levels] * (1 - wx) + maps[y1[:, None], x1[None, :], levels] * wx
    return np.asarray(top * (1 - wy) + bottom * wy)


def _lift(luma: np.ndarray, gamma: float) -> np.ndarray:
    """Gamma with a small toe, so the curve's slope at black stays finite (no noise explosion)."""
    toe = 0.01
    lo, hi = toe**gamma, (1 + toe) ** gamma
    return np.asarray(((luma + toe) ** gamma - lo) / (hi - lo))


def _smooth_chroma(chroma: np.ndarray, sigma: float) -> np.ndarray:
    """Chroma blurred at half resolution and scaled back up (like JPEG's 4:2:0): cheap, and the eye
    does not see colour detail at that scale anyway."""
    height, width = chroma.shape[:2]
    if min(height, width) < 16:
        return chroma
    h2, w2 = height // 2 * 2, width // 2 * 2
    c = chroma[:h2, :w2]
    half = 0.25 * (c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2])
    out = np.empty_like(chroma)
    for ch in range(3):
        small = ndimage.gaussian_filter(half[..., ch], sigma / 2.0)
        out[..., ch] = np.asarray(
            Image.fromarray(small, mode="F").resize((width, height), Image.Resampling.BILINEAR)
        )
    return out


def enhance_low_light(image: Image.Image) -> Image.Image:
    """Brighten a dark photo with natural colours; returns a new RGB image of the same size."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    rgb *= 1.0 / 255.0
    luma = rgb @ _LUMA
    chroma = rgb
    chroma -= luma[..., None]  # in place: the RGB copy is not needed any more

    sigma = noise_sigma(np.round(luma * 255.0)) / 255.0
    base = ndimage.gaussian_filter(luma, 1.0)
    detail = luma - base
    # Soft threshold: grain below DENOISE_K sigmas goes, edges keep all but that amount.
    threshold = DENOISE_K * sigma
    clean = base + np.sign(detail) * np.maximum(np.abs(detail) - threshold, 0.0)
    np.clip(clean, 0.0, 1.0, out=clean)
    del base, detail, luma
    chroma = _smooth_chroma(chroma, 1.0 + 2.0 * min(1.0, sigma * 255.0 / 4.0))

    mean = float(np.clip(clean.mean(), 1e-3, 0.99))
    gamma = float(np.clip(np.log(TARGET_MEAN) / np.log(mean), MAX_LIFT, 1.0))
    lifted = _lift(clean, gamma)
    out_luma = (1.0 - CLAHE_WEIGHT) * lifted + CLAHE_WEIGHT * _clahe(lifted)
    del lifted

    # Chroma follows the luma gain, so each pixel is brightened like an exposure change: same hue,
    # same saturation.
    gain = np.minimum((out_luma + 1e-3) / (clean + 1e-3), MAX_CHROMA_GAIN)
    del clean
    chroma *= gain[..., None]
    # Where luma + chroma would leave 0..1, shrink the chroma (toward grey) rather than clip a channel,
    # which would shift the hue.
    up = np.max(chroma, axis=-1)
    down = -np.min(chroma, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.fmin((1.0 - out_luma) / up, out_luma / down)  # fmin: a 0/0 side does not count
    # 0/0 on both sides: a grey pixel at black or white, with no chroma to shrink.
    np.nan_to_num(scale, copy=False, nan=1.0)
    np.clip(scale, 0.0, 1.0, out=scale)
    chroma *= scale[..., None]
    chroma += out_luma[..., None]
    np.clip(chroma, 0.0, 1.0, out=chroma)
    chroma *= 255.0
    return Image.fromarray(np.round(chroma).astype(np.uint8))
