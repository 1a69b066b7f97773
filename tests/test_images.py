"""services.photos.images: upload validation, orientation and thumbnails, on real photos and bad input."""

from __future__ import annotations

import io
import json
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, features

from core.config import Settings
from core.errors import Invalid, TooLarge, UnsupportedMedia
from services.photos.images import (
    ImageInfo,
    inspect_image,
    load_oriented,
    make_thumbnail,
    sniff_format,
)
from tests.paths import TESTDATA_DIR

EXIF_DIR = TESTDATA_DIR / "exif"
LIMITS: dict[str, int] = {
    "max_bytes": Settings.model_fields["max_upload_bytes"].default,
    "max_pixels": Settings.model_fields["max_image_pixels"].default,
}
# Mean absolute difference (0..255 per channel) below which two renderings show the same picture
# the same way up. A wrong orientation of a real photo lands far above it (tens of levels).
SAME_PICTURE_MAD = 6.0


def _ground_truth() -> dict[str, dict[str, Any]]:
    path = EXIF_DIR / "ground_truth.json"
    return json.loads(path.read_text()) if path.is_file() else {}


GROUND_TRUTH = _ground_truth()
NAMES = sorted(GROUND_TRUTH)
ORIENTED = [n for n in NAMES if (GROUND_TRUTH[n].get("orientation") or 1) != 1]
needs_testdata = pytest.mark.skipif(not GROUND_TRUTH, reason=f"no EXIF test data under {EXIF_DIR}")


def _real(name: str) -> bytes:
    return (EXIF_DIR / "images" / name).read_bytes()


def _largest_real_jpeg() -> bytes:
    if not NAMES:
        pytest.skip("no real photos available")
    return max((_real(n) for n in NAMES), key=len)


def _pattern(width: int = 120, height: int = 80) -> Image.Image:
    """Smooth, asymmetric picture: every flip or rotation of it looks clearly different."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 255 * xx / (width - 1)
    green = 255 * yy / (height - 1)
    blue = np.where((xx < width / 3) & (yy < height / 3), 255.0, 40.0)
    return Image.fromarray(np.stack([red, green, blue], axis=-1).astype(np.uint8), "RGB")


def _encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _mad(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size, (a.size, b.size)
    return float(
        np.abs(np.asarray(a.convert("RGB"), np.int16) - np.asarray(b.convert("RGB"), np.int16)).mean()
    )


def _coarse_mad(a: Image.Image, b: Image.Image) -> float:
    """_mad at a quarter of the size: JPEG's fine-grained compression noise averages out there,
    while a flipped or rotated picture still differs by tens of levels."""
    size = (max(1, a.width // 4), max(1, a.height // 4))
    return _mad(a.resize(size, Image.Resampling.BOX), b.resize(size, Image.Resampling.BOX))


def _decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.copy()


# -- sniffing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"GIF87a\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"II*\x00\x08\x00\x00\x00", "image/tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "image/tiff"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "image/heic"),
        (b"\x00\x00\x00\x14ftypmif1\x00\x00\x00\x00mif1", "image/heif"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "image/avif"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif", "image/avif"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", None),  # MP4 video
        (b"II*\x00\x10\x00\x00\x00CR\x02\x00", None),  # Canon CR2 raw
        (b"BM\x36\x00\x00\x00", None),  # BMP is not accepted
        (b"<svg xmlns=", None),
        (b"", None),
    ],
)
def test_sniff_format_from_magic_bytes(head: bytes, expected: str | None) -> None:
    assert sniff_format(head + b"\x00" * 32) == expected


# -- real photos -------------------------------------------------------------------------------


@needs_testdata
@pytest.mark.parametrize("name", NAMES)
def test_real_photo_is_accepted_with_stored_size_and_orientation(name: str) -> None:
    truth = GROUND_TRUTH[name]
    data = _real(name)
    info = inspect_image(data, **LIMITS)
    assert isinstance(info, ImageInfo)
    assert info.content_type == "image/jpeg"
    assert (info.width, info.height) == (truth["width"], truth["height"])
    orientation = truth.get("orientation") or 1
    assert info.orientation == info.exif.orientation == orientation
    swapped = orientation >= 5
    expected_display = (truth["height"], truth["width"]) if swapped else (truth["width"], truth["height"])
    assert (info.display_width, info.display_height) == expected_display
    assert info.size_bytes == len(data)


@needs_testdata
@pytest.mark.parametrize("name", NAMES)
def test_real_photo_thumbnail_bounds_and_never_upscales(name: str) -> None:
    data = _real(name)
    info = inspect_image(data, **LIMITS)
    encoded = make_thumbnail(data, 256)
    assert sniff_format(encoded) == "image/jpeg"
    thumb = _decode(encoded)
    assert thumb.mode == "RGB"
    longest = max(info.display_width, info.display_height)
    assert max(thumb.size) == min(256, longest)
    if info.display_width != info.display_height:
        assert (thumb.width > thumb.height) == (info.display_width > info.display_height)


def _reference_upright(data: bytes, size: tuple[int, int]) -> Image.Image:
    """Independent rendering: Pillow's exif_transpose, ICC -> sRGB, resized to `size`."""
    with Image.open(io.BytesIO(data)) as im:
        upright = ImageOps.exif_transpose(im)
        icc = im.info.get("icc_profile")
    upright = upright.convert("RGB")
    if icc:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            upright, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
        assert converted is not None
        upright = converted
    return upright.resize(size, Image.Resampling.LANCZOS)


@needs_testdata
@pytest.mark.parametrize("name", ORIENTED)
def test_thumbnail_of_oriented_photo_comes_out_upright(name: str) -> None:
    data = _real(name)
    thumb = _decode(make_thumbnail(data, 256))
    reference = _reference_upright(data, thumb.size)
    assert _coarse_mad(thumb, reference) < SAME_PICTURE_MAD


@needs_testdata
def test_oriented_samples_cover_all_transposing_values() -> None:
    # The development set has one photo under each orientation 1..8; the mean difference above
    # must separate a correct rendering from a wrong one, so check the threshold on this photo.
    orientations = {GROUND_TRUTH[n].get("orientation") or 1 for n in ORIENTED}
    assert orientations >= {2, 3, 4, 5, 6, 7, 8}
    name = next(n for n in ORIENTED if GROUND_TRUTH[n]["orientation"] == 3)
    thumb = _decode(make_thumbnail(_real(name), 256))
    reference = _reference_upright(_real(name), thumb.size)
    assert _coarse_mad(thumb, reference) < SAME_PICTURE_MAD
    assert _coarse_mad(thumb.transpose(Image.Transpose.ROTATE_180), reference) > 3 * SAME_PICTURE_MAD


def test_user_rotation_is_clockwise_and_applied_after_orientation() -> None:
    data = _encode(_pattern(), "PNG")
    upright = load_oriented(data)
    for degrees, transpose in (
        (90, Image.Transpose.ROTATE_270),
        (180, Image.Transpose.ROTATE_180),
        (270, Image.Transpose.ROTATE_90),
    ):
        rotated = load_oriented(data, rotation=degrees)
        assert _mad(rotated, upright.transpose(transpose)) == 0
    # Clockwise: after a quarter turn the red-left/top-left-blue corner sits top-right.
    assert load_oriented(data, rotation=90).getpixel((79, 0))[2] == 255
    thumb = _decode(make_thumbnail(data, 60, rotation=90))
    assert thumb.size == (40, 60)
    with pytest.raises(Invalid, match="Rotation"):
        load_oriented(data, rotation=45)


def test_load_oriented_downscales_jpeg_without_upscaling() -> None:
    big = _pattern(1800, 1200)
    data = _encode(big, "JPEG", quality=90)
    small = load_oriented(data, max_side=300)
    assert small.size == (300, 200)
    assert small.mode == "RGB"
    assert _mad(small, big.resize((300, 200), Image.Resampling.LANCZOS)) < 3
    assert load_oriented(data, max_side=5000).size == (1800, 1200)
    assert _decode(make_thumbnail(data, 4096)).size == (1800, 1200)


# -- other formats --------------------------------------------------------------------------------

ROUND_TRIPS = [
    ("PNG", "image/png", {}),
    ("WEBP", "image/webp", {"quality": 95}),
    ("GIF", "image/gif", {}),
    ("TIFF", "image/tiff", {"compression": "tiff_lzw"}),
    ("HEIF", "image/heic", {"quality": 95}),
    ("JPEG", "image/jpeg", {"quality": 95}),
]
if features.check("avif"):
    ROUND_TRIPS.append(("AVIF", "image/avif", {"quality": 95}))


@pytest.mark.parametrize(("fmt", "content_type", "params"), ROUND_TRIPS)
def test_format_round_trip(fmt: str, content_type: str, params: dict[str, Any]) -> None:
    original = _pattern(120, 80)
    data = _encode(original, fmt, **params)
    info = inspect_image(data, **LIMITS)
    assert info.content_type == content_type
    assert (info.width, info.height) == (120, 80)
    assert (info.display_width, info.display_height) == (120, 80)
    assert info.orientation == 1
    thumb = _decode(make_thumbnail(data, 60))
    assert thumb.size == (60, 40)
    # GIF is palettised (dithered); the rest are lossless or high quality.
    tolerance = 12 if fmt == "GIF" else SAME_PICTURE_MAD
    assert _mad(thumb, original.resize((60, 40), Image.Resampling.LANCZOS)) < tolerance


@pytest.mark.parametrize(("fmt", "content_type", "params"), [r for r in ROUND_TRIPS if r[0] != "GIF"])
def test_exif_orientation_in_every_format(fmt: str, content_type: str, params: dict[str, Any]) -> None:
    # Pillow's TIFF decoder and libheif rotate the pixels themselves, the others leave it to us:
    # the result must be the same upright picture either way. pillow-heif writes the rotation as
    # a HEIF container transform, which then describes the stored picture (orientation 1).
    original = _pattern(120, 80)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    data = _encode(original, fmt, exif=exif.tobytes(), **params)
    info = inspect_image(data, **LIMITS)
    assert info.content_type == content_type
    if fmt == "HEIF":
        assert (info.orientation, info.width, info.height) == (1, 80, 120)
    else:
        assert (info.orientation, info.width, info.height) == (6, 120, 80)
    assert (info.display_width, info.display_height) == (80, 120)
    upright = load_oriented(data)
    assert upright.size == (80, 120)
    assert _mad(upright, original.transpose(Image.Transpose.ROTATE_270)) < SAME_PICTURE_MAD


def test_alpha_is_composited_over_white() -> None:
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 20, 40))
    out = load_oriented(_encode(rgba, "PNG"))
    assert out.mode == "RGB"
    assert out.getpixel((5, 5)) == (255, 0, 0)
    assert out.getpixel((35, 5)) == (255, 255, 255)
    palette = rgba.convert("P")
    palette.info["transparency"] = palette.getpixel((35, 5))
    gif = load_oriented(_encode(palette, "GIF", transparency=palette.getpixel((35, 5))))
    assert gif.getpixel((35, 5)) == (255, 255, 255)


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (16, 1))
    data = _encode(Image.fromarray(ramp), "PNG")
    info = inspect_image(data, **LIMITS)
    assert (info.width, info.height) == (64, 16)
    out = np.asarray(load_oriented(data))
    assert out[0, 0, 0] < 5
    assert out[0, 63, 0] > 250
    assert 100 < out[0, 32, 0] < 160  # mid-grey, not clipped to white


def test_cmyk_and_greyscale_jpeg_become_rgb() -> None:
    cmyk = _pattern().convert("CMYK")
    assert load_oriented(_encode(cmyk, "JPEG")).mode == "RGB"
    grey = _pattern().convert("L")
    out = load_oriented(_encode(grey, "JPEG", quality=95))
    assert out.mode == "RGB"
    assert _mad(out, grey.convert("RGB")) < 3


# -- bad input ------------------------------------------------------------------------------------


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header (correct CRCs) declaring width x height, with a token IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def test_empty_file_is_rejected() -> None:
    with pytest.raises(Invalid, match="empty"):
        inspect_image(b"", **LIMITS)


def test_file_over_the_size_limit_is_rejected() -> None:
    data = _encode(_pattern(), "PNG")
    with pytest.raises(TooLarge, match="limit") as caught:
        inspect_image(data, max_bytes=len(data) - 1, max_pixels=LIMITS["max_pixels"])
    assert caught.value.status == 413
    inspect_image(data, max_bytes=len(data), max_pixels=LIMITS["max_pixels"])  # exactly at the limit


def test_random_bytes_named_jpg_are_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "holiday.jpg"  # the name must not matter
    path.write_bytes(random.Random(7).randbytes(4096))
    with pytest.raises(UnsupportedMedia, match="not a supported image") as caught:
        inspect_image(path.read_bytes(), **LIMITS)
    assert caught.value.status == 415


def test_jpeg_magic_followed_by_garbage_is_damaged() -> None:
    data = b"\xff\xd8\xff\xe0" + random.Random(3).randbytes(4096)
    with pytest.raises(Invalid, match="JPEG file is damaged"):
        inspect_image(data, **LIMITS)


def test_decompression_bomb_header_is_rejected_before_decoding() -> None:
    bomb = _png_claiming(50_000, 50_000)
    assert len(bomb) < 200
    with pytest.raises(TooLarge, match="megapixels") as caught:
        inspect_image(bomb, **LIMITS)
    assert caught.value.status == 413


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_limit_is_the_callers_not_pillows() -> None:
    # 132 MP: under Pillow's own hard stop (~179 MP) but over the service default of 120 MP.
    with pytest.raises(TooLarge, match=r"12000x11000 pixels .*limit is 120\.0 megapixels"):
        inspect_image(_png_claiming(12_000, 11_000), **LIMITS)
    # A small explicit limit applies too; with a generous one the same bytes reach the decoder,
    # which then finds the pixel data missing: the size check ran first, without decoding.
    header = _png_claiming(2_000, 1_000)
    with pytest.raises(TooLarge, match="2000x1000"):
        inspect_image(header, max_bytes=LIMITS["max_bytes"], max_pixels=1_000_000)
    with pytest.raises(Invalid, match="damaged or truncated"):
        inspect_image(header, max_bytes=LIMITS["max_bytes"], max_pixels=3_000_000)


def test_truncated_real_jpeg_is_rejected() -> None:
    data = _largest_real_jpeg()
    for cut in (data[: len(data) // 2], data[:-100]):
        with pytest.raises(Invalid, match="truncated") as caught:
            inspect_image(cut, **LIMITS)
        assert caught.value.status == 422


def test_partially_decodable_jpeg_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    half = _encode(_pattern(600, 400), "JPEG", quality=90)
    half = half[: len(half) // 2]
    # Pillow can paint this file when told to tolerate truncation ...
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with Image.open(io.BytesIO(half)) as im:
        im.load()
    # ... and the service refuses to run in that mode rather than accept damaged uploads.
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        inspect_image(half, **LIMITS)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    with pytest.raises(Invalid, match="damaged or truncated"):
        inspect_image(half, **LIMITS)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize(("fmt", "content_type", "params"), ROUND_TRIPS)
def test_truncated_file_of_every_format_is_rejected(
    fmt: str, content_type: str, params: dict[str, Any]
) -> None:
    rng = np.random.default_rng(1)
    noisy = Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), "RGB")
    data = _encode(noisy, fmt, **params)
    with pytest.raises(Invalid, match="damaged or truncated"):
        inspect_image(data[: len(data) // 2], **LIMITS)


def test_load_oriented_maps_decoder_errors_to_domain_errors() -> None:
    with pytest.raises(UnsupportedMedia):
        load_oriented(b"plain text")
    with pytest.raises(Invalid):
        load_oriented(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
