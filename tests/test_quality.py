"""Quality scores and reasons on real photos (and real photos degraded in known ways), plus low-light
enhancement. Pure functions: no database, no HTTP."""

import io
import json
import warnings
from collections import defaultdict
from functools import cache

import numpy as np
import pytest
from PIL import Image, ImageFilter
from scipy import signal

from services.photos.images import load_oriented
from services.quality.assess import (
    ISSUES,
    THRESHOLDS_PATH,
    QualityResult,
    QualityThresholds,
    assess_quality,
    jpeg_quality_from_tables,
    jpeg_tables,
)
from services.quality.enhance import enhance_low_light
from tests.paths import TESTDATA_DIR

QUALITY_DIR = TESTDATA_DIR / "quality"
TRUTH: dict[str, dict] = json.loads((QUALITY_DIR / "ground_truth.json").read_text())
BLUR = {"blurry", "motion_blur"}
ANALYSIS_SIDE = 1280  # what the analysis job passes


def _names(label: str) -> list[str]:
    return sorted(name for name, entry in TRUTH.items() if entry["label"] == label)


@cache
def _assessed(name: str) -> QualityResult:
    data = (QUALITY_DIR / "images" / name).read_bytes()
    with Image.open(io.BytesIO(data)) as raw:
        size = raw.size
    image = load_oriented(data, max_side=ANALYSIS_SIDE)
    return assess_quality(image, jpeg_quant_tables=jpeg_tables(data), original_size=size)


@cache
def _sharp_image(name: str) -> Image.Image:
    return load_oriented((QUALITY_DIR / "images" / name).read_bytes(), max_side=1024)


def _motion_blur(image: Image.Image, length: int, angle_deg: float) -> Image.Image:
    size = length | 1
    kernel = np.zeros((size, size))
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, length * 4)
    xs = np.round(size // 2 + t * np.cos(np.radians(angle_deg))).astype(int)
    ys = np.round(size // 2 - t * np.sin(np.radians(angle_deg))).astype(int)
    np.add.at(kernel, (ys, xs), 1.0)
    kernel /= kernel.sum()
    pixels = np.asarray(image, dtype=np.float64)
    pad = size // 2
    padded = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.stack([signal.fftconvolve(padded[..., c], kernel, mode="valid") for c in range(3)], axis=-1)
    return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8))


def _exposure(image: Image.Image, factor: float) -> Image.Image:
    """Exposure change in linear light, clipped like a sensor."""
    srgb = np.asarray(image, dtype=np.float64) / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4) * factor
    linear = np.clip(linear, 0, 1)
    out = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return Image.fromarray(np.round(out * 255).astype(np.uint8))


# --------------------------------------------------------------------------- real photos


def test_sharp_shot_beats_its_blurred_versions() -> None:
    scenes: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, entry in TRUTH.items():
        scenes[entry["scene"]][entry["label"]].append(name)
    compared = 0
    for labels in scenes.values():
        for sharp in labels.get("sharp", []):
            result = _assessed(sharp)
            assert not BLUR & set(result.issues), (sharp, result)
            for label in ("defocus_blur", "motion_blur"):
                for blurred in labels.get(label, []):
                    other = _assessed(blurred)
                    assert result.score > other.score, (sharp, blurred, result.score, other.score)
                    assert BLUR & set(other.issues), (blurred, other)
                    compared += 1
    assert compared


@pytest.mark.parametrize("name", _names("defocus_blur"))
def test_defocused_photos_are_blurry(name: str) -> None:
    assert "blurry" in _assessed(name).issues


@pytest.mark.parametrize("name", _names("motion_blur"))
def test_motion_blurred_photos_are_flagged(name: str) -> None:
    # The specific reason is motion_blur; any blur flag is the minimum.
    assert BLUR & set(_assessed(name).issues)


@pytest.mark.parametrize("name", _names("dark"))
def test_dark_photos_are_dark(name: str) -> None:
    result = _assessed(name)
    assert "dark" in result.issues
    assert result.metrics["mean_luminance"] < 0.3


def test_result_shape() -> None:
    result = _assessed(_names("sharp")[0])
    assert 0 <= result.score <= 100
    assert set(result.issues) <= set(ISSUES)
    # Metric names the API and its tests rely on.
    assert {"mean_luminance", "edge_sharpness", "noise_sigma", "laplacian_variance", "jpeg_quality"} <= set(
        result.metrics
    )
    assert all(isinstance(v, float) and np.isfinite(v) for v in result.metrics.values())
    assert result.as_dict()["issues"] == result.issues


# --------------------------------------------------------------------------- known degradations

SHARP = _names("sharp")


@pytest.mark.parametrize("name", SHARP)
def test_clean_sharp_photo_has_no_issue(name: str) -> None:
    assert assess_quality(_sharp_image(name)).issues == []


@pytest.mark.parametrize("name", SHARP)
def test_gaussian_blur_is_blurry(name: str) -> None:
    result = assess_quality(_sharp_image(name).filter(ImageFilter.GaussianBlur(3)))
    assert "blurry" in result.issues
    assert result.score < assess_quality(_sharp_image(name)).score


@pytest.mark.parametrize("name", SHARP)
@pytest.mark.parametrize("angle", [0.0, 35.0, 100.0])
def test_motion_kernel_is_motion_blur(name: str, angle: float) -> None:
    result = assess_quality(_motion_blur(_sharp_image(name), 15, angle))
    assert "motion_blur" in result.issues, result.metrics


@pytest.mark.parametrize("name", SHARP)
def test_noise_is_noisy(name: str) -> None:
    pixels = np.asarray(_sharp_image(name), dtype=np.float64)
    noisy = pixels + np.random.default_rng(0).normal(0, 15, pixels.shape)
    result = assess_quality(Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8)))
    assert "noisy" in result.issues
    assert not BLUR & set(result.issues)


@pytest.mark.parametrize("name", SHARP)
def test_jpeg_quality_10_is_heavily_compressed(name: str) -> None:
    buffer = io.BytesIO()
    _sharp_image(name).save(buffer, "JPEG", quality=10)
    data = buffer.getvalue()
    result = assess_quality(load_oriented(data), jpeg_quant_tables=jpeg_tables(data))
    assert "heavily_compressed" in result.issues
    assert result.metrics["jpeg_quality"] == pytest.approx(10, abs=1)


@pytest.mark.parametrize("name", SHARP)
def test_overexposure_is_overexposed(name: str) -> None:
    result = assess_quality(_exposure(_sharp_image(name), 2**2.5))
    assert "overexposed" in result.issues


@pytest.mark.parametrize("name", SHARP)
def test_underexposure_is_dark(name: str) -> None:
    result = assess_quality(_exposure(_sharp_image(name), 0.12))
    assert "dark" in result.issues


def test_low_resolution_from_original_size() -> None:
    image = _sharp_image(SHARP[0])
    tiny = image.resize((160, 120))
    assert "low_resolution" in assess_quality(tiny).issues
    # The caller's downscaled copy does not make a large original low-resolution.
    assert "low_resolution" not in assess_quality(tiny, original_size=(4000, 3000)).issues
    assert "low_resolution" in assess_quality(image, original_size=(640, 480)).issues


def test_tiny_and_flat_images_do_not_crash() -> None:
    for image in (Image.new("RGB", (8, 8), "gray"), Image.new("RGB", (300, 200), (250, 250, 250))):
        result = assess_quality(image)
        assert 0 <= result.score <= 100
        assert "low_resolution" in result.issues


# --------------------------------------------------------------------------- faces


def _face_scenes(name: str) -> tuple[Image.Image, Image.Image, list[float]]:
    """(sharp subject in `box` on a blurred background, blurred subject on a sharp background, box)."""
    image = _sharp_image(name)
    box = [0.35, 0.3, 0.3, 0.25]
    w, h = image.size
    px = (int(box[0] * w), int(box[1] * h), int((box[0] + box[2]) * w), int((box[1] + box[3]) * h))
    bokeh = image.filter(ImageFilter.GaussianBlur(6))
    bokeh.paste(image.crop(px), px[:2])
    soft_face = image.copy()
    soft_face.paste(image.crop(px).filter(ImageFilter.GaussianBlur(4)), px[:2])
    return bokeh, soft_face, box


@pytest.mark.parametrize("name", SHARP)
def test_sharp_face_on_bokeh_is_not_blurry(name: str) -> None:
    bokeh, _, box = _face_scenes(name)
    result = assess_quality(bokeh, face_boxes=[box, [0.0, 0.0, 0.02, 0.02]])
    assert "face_edge_sharpness" in result.metrics
    assert not BLUR & set(result.issues)


@pytest.mark.parametrize("name", SHARP)
def test_soft_face_makes_the_photo_blurry(name: str) -> None:
    _, soft_face, box = _face_scenes(name)
    assert not BLUR & set(assess_quality(soft_face).issues)
    assert "blurry" in assess_quality(soft_face, face_boxes=[box]).issues


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("quality", [5, 10, 25, 50, 75, 90, 95])
def test_jpeg_quality_from_tables_matches_libjpeg(quality: int) -> None:
    buffer = io.BytesIO()
    _sharp_image(SHARP[0]).resize((64, 64)).save(buffer, "JPEG", quality=quality)
    assert jpeg_quality_from_tables(jpeg_tables(buffer.getvalue())) == pytest.approx(quality, abs=1)


def test_jpeg_helpers_without_jpeg() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    assert jpeg_tables(buffer.getvalue()) is None
    assert jpeg_tables(b"not an image") is None
    assert jpeg_quality_from_tables(None) is None


def test_thresholds_file_is_calibrated_and_complete() -> None:
    data = json.loads(THRESHOLDS_PATH.read_text())
    assert "eval_quality.py" in data["_source"]
    assert set(data["thresholds"]) == set(QualityThresholds.__dataclass_fields__)
    assert QualityThresholds.load() == QualityThresholds(**data["thresholds"])


# --------------------------------------------------------------------------- enhancement


@pytest.mark.parametrize("name", _names("dark"))
def test_low_light_enhancement(name: str) -> None:
    original = load_oriented((QUALITY_DIR / "images" / name).read_bytes())
    enhanced = enhance_low_light(original)
    assert enhanced.size == original.size and enhanced.mode == "RGB"
    before = np.asarray(original.convert("L"), dtype=np.float64)
    after = np.asarray(enhanced.convert("L"), dtype=np.float64)
    assert after.mean() > before.mean() + 30
    assert after.std() > before.std()  # RMS contrast
    assert "dark" not in assess_quality(enhanced).issues
    hsv_before = np.asarray(original.convert("HSV"), dtype=np.float64)
    hsv_after = np.asarray(enhanced.convert("HSV"), dtype=np.float64)
    colourful = (hsv_before[..., 1] > 60) & (hsv_before[..., 2] > 15)
    assert colourful.sum() > 1000
    shift = np.abs(hsv_before[..., 0] - hsv_after[..., 0])[colourful]
    assert np.median(np.minimum(shift, 256 - shift)) < 6  # hue barely moves (256 = full circle)
    # Colours are not washed out either.
    assert hsv_after[..., 1][colourful].mean() > 0.8 * hsv_before[..., 1][colourful].mean()


def test_enhancement_keeps_white_white() -> None:
    """A grey pixel that ends at white has no chroma to shrink (0/0): it must stay white, not turn
    into whatever an invalid cast gives."""
    dark = np.full((64, 64, 3), 8, dtype=np.uint8)
    dark[20:40, 20:40] = 255
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = np.asarray(enhance_low_light(Image.fromarray(dark)))
    assert (out[20:40, 20:40] == 255).all()


def test_enhancement_of_grey_and_tiny_images() -> None:
    for image in (Image.new("RGB", (5, 3), (10, 10, 10)), Image.new("RGB", (64, 48), (30, 20, 10))):
        out = enhance_low_light(image)
        assert out.size == image.size
        assert np.asarray(out).mean() >= np.asarray(image).mean()
