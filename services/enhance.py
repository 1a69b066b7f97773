"""Low-light enhancement: a brighter, clearer derived image; colours kept natural, original untouched.

Works on luminance only (YCbCr): a gamma chosen so the mean lands near mid-grey, then contrast-limited
adaptive histogram equalisation (CLAHE) on tiles, then chroma scaled with the luminance gain so colours
do not wash out. Noise is smoothed first in proportion to how much the shadows are lifted.
"""

import numpy as np
from PIL import Image
from scipy import ndimage

TARGET_MEAN = 0.45
TILES = 8
CLIP_LIMIT = 2.5  # times the mean histogram bin: caps how much any tile's contrast may be stretched
BINS = 256


def _clahe(luma: np.ndarray) -> np.ndarray:
    """CLAHE on a 0..1 luminance image: per-tile clipped equalisation, bilinearly blended."""
    height, width = luma.shape
    tile_h, tile_w = int(np.ceil(height / TILES)), int(np.ceil(width / TILES))
    padded = np.pad(luma, ((0, tile_h * TILES - height), (0, tile_w * TILES - width)), mode="reflect")
    levels = np.clip((padded * (BINS - 1)).astype(np.int32), 0, BINS - 1)
    tiles = levels.reshape(TILES, tile_h, TILES, tile_w).transpose(0, 2, 1, 3).reshape(TILES * TILES, -1)
    histograms = np.stack([np.bincount(t, minlength=BINS) for t in tiles]).astype(np.float64)
    limit = CLIP_LIMIT * tiles.shape[1] / BINS
    excess = np.maximum(histograms - limit, 0).sum(axis=1, keepdims=True)
    histograms = np.minimum(histograms, limit) + excess / BINS
    cdfs = np.cumsum(histograms, axis=1)
    cdfs = (cdfs - cdfs[:, :1]) / np.maximum(cdfs[:, -1:] - cdfs[:, :1], 1e-9)
    maps = cdfs.reshape(TILES, TILES, BINS)
    # Bilinear blend of the four surrounding tiles' mappings, per pixel.
    levels = np.clip((luma * (BINS - 1)).astype(np.int32), 0, BINS - 1)
    ty = np.clip((np.arange(height) + 0.5) / tile_h - 0.5, 0, TILES - 1)
    tx = np.clip((np.arange(width) + 0.5) / tile_w - 0.5, 0, TILES - 1)
    y0, x0 = np.floor(ty).astype(int), np.floor(tx).astype(int)
    y1, x1 = np.minimum(y0 + 1, TILES - 1), np.minimum(x0 + 1, TILES - 1)
    wy, wx = (ty - y0)[:, None], (tx - x0)[None, :]
    top = maps[y0[:, None], x0[None, :], levels] * (1 - wx) + maps[y0[:, None], x1[None, :], levels] * wx
    bottom = maps[y1[:, None], x0[None, :], levels] * (1 - wx) + maps[y1[:, None], x1[None, :], levels] * wx
    return top * (1 - wy) + bottom * wy


def enhance_low_light(image: Image.Image) -> Image.Image:
    ycbcr = np.asarray(image.convert("YCbCr"), dtype=np.float64) / 255.0
    luma, chroma = ycbcr[..., 0], ycbcr[..., 1:] - 0.5
    mean = float(np.clip(luma.mean(), 1e-3, 0.99))
    gamma = float(np.clip(np.log(TARGET_MEAN) / np.log(mean), 0.3, 1.0))
    # Lifting shadows lifts their noise too: smooth more the harder we lift.
    smoothed = ndimage.gaussian_filter(luma, sigma=0.6 + 1.2 * (1 - gamma))
    lifted = smoothed**gamma
    equalised = 0.6 * lifted + 0.4 * _clahe(lifted)
    gain = (equalised + 1e-3) / (luma + 1e-3)
    # Chroma follows the luminance gain (bounded), which keeps saturation and hue where they were.
    chroma = chroma * np.clip(gain, 1.0, 3.0)[..., None] ** 0.5
    out = np.dstack([equalised, np.clip(chroma + 0.5, 0, 1)])
    return Image.fromarray((np.clip(out, 0, 1) * 255).astype(np.uint8), mode="YCbCr").convert("RGB")
