"""Upload validation, upright decoding and thumbnails. Pure functions over bytes: no database, no HTTP.

inspect_image() is the gate for uploads: it sniffs the type from magic bytes, enforces the byte and
pixel limits before anything is decoded, then decodes the whole first frame so damaged or truncated
files are rejected with a domain error instead of being stored. load_oriented() and make_thumbnail()
turn already-validated bytes into upright sRGB pictures.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

from core.errors import Invalid, TooLarge, UnsupportedMedia
from services.photos.exif import ExifData, exif_from_image, parse_orientation

# Once, at import: lets Image.open decode HEIC/HEIF.
pillow_heif.register_heif_opener()

SUPPORTED_TYPES_TEXT = "JPEG, PNG, WebP, GIF, TIFF, HEIC/HEIF or AVIF"

# Canonical content type -> the one Pillow plugin allowed to open it (never let Pillow guess
# among all of its decoders for untrusted bytes).
_PIL_FORMAT: dict[str, str] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/tiff": "TIFF",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
    "image/avif": "AVIF",
}
_LABEL: dict[str, str] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WebP",
    "image/tiff": "TIFF",
    "image/heic": "HEIC",
    "image/heif": "HEIF",
    "image/avif": "AVIF",
}

# ISO-BMFF brands (ftyp box). HEVC-coded HEIF is "image/heic"; AVIF is decoded by Pillow's own
# AVIF plugin (pillow-heif 1.x no longer reads AV1); mif1/msf1 alone is the generic HEIF container.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"mif2", b"miaf"})

# EXIF orientation -> the transpose that makes the stored pixels upright (same table as
# ImageOps.exif_transpose, applied here so a malformed EXIF block cannot break decoding).
_ORIENTATION_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Clockwise user rotation -> Pillow transpose (Pillow's ROTATE_* are counter-clockwise).
_ROTATION_TRANSPOSE: dict[int, Image.Transpose] = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}

THUMBNAIL_QUALITY = 85
# Long side the models see (analysis and search by example alike): enough for the 640 px detector
# and for small faces, cheap to decode.
ANALYSIS_MAX_SIDE = 1280


@dataclass(frozen=True, slots=True)
class ImageInfo:
    content_type: str  # canonical, from magic bytes: "image/jpeg", "image/heic", ...
    format: str  # Pillow's format name: "JPEG", "MPO", "PNG", "HEIF", ...
    mode: str  # Pillow mode of the decoded first frame: "RGB", "L", "P", "CMYK", ...
    # Stored pixel size, before the EXIF orientation is applied. For HEIF that is the picture libheif
    # returns (container transforms applied), with orientation 1.
    width: int
    height: int
    orientation: int  # EXIF orientation 1..8 (same as exif.orientation): display = orient(stored)
    display_width: int  # size once upright (what load_oriented returns without user rotation)
    display_height: int
    size_bytes: int
    exif: ExifData


def sniff_format(data: bytes) -> str | None:
    """Canonical content type from magic bytes alone (never the name or a client header)."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        # Canon CR2 is TIFF-shaped but its first IFD is only a preview of the raw data.
        return None if head[8:10] == b"CR" else "image/tiff"
    if head[4:8] == b"ftyp":
        return _sniff_isobmff(data)
    return None


def _sniff_isobmff(data: bytes) -> str | None:
    box_size = int.from_bytes(data[0:4], "big")
    if box_size < 16:
        return None
    major = data[8:12]
    # Compatible brands follow the 4-byte minor version; cap the scan for absurd box sizes.
    brands = {data[i : i + 4] for i in range(16, min(box_size, len(data), 256) - 3, 4)}
    if major in _AVIF_BRANDS:
        return "image/avif"
    if major in _HEIC_BRANDS:
        return "image/heic"
    if major in _HEIF_BRANDS or brands & _HEIF_BRANDS:
        # Generic container: the compatible brands say which codec is inside.
        if brands & _AVIF_BRANDS:
            return "image/avif"
        if brands & _HEIC_BRANDS:
            return "image/heic"
        return "image/heif"
    return None  # MP4/MOV and other ISO-BMFF files


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Validate an upload and describe it, or raise Invalid / TooLarge / UnsupportedMedia.

    Order matters: cheap checks first, the pixel limit from the header before any decoding,
    and finally a full decode of the first frame (with Pillow's truncated-image tolerance off)
    so that a partially decodable file is rejected as damaged.
    """
    size = len(data)
    if size == 0:
        raise Invalid("The file is empty (0 bytes).")
    if size > max_bytes:
        raise TooLarge(f"The file is {_mb(size)}; the upload limit is {_mb(max_bytes)}.")
    content_type = sniff_format(data)
    if content_type is None:
        raise UnsupportedMedia(f"The file is not a supported image; upload {SUPPORTED_TYPES_TEXT}.")
    label = _LABEL[content_type]
    _require_strict_decoding()

    try:
        with _open(data, content_type) as im:
            width, height = im.size
            if width <= 0 or height <= 0:
                raise Invalid(f"The {label} file declares an empty picture ({width}x{height} pixels).")
            if width * height > max_pixels:
                raise TooLarge(
                    f"The image is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels); "
                    f"the limit is {max_pixels / 1e6:.1f} megapixels."
                )
            # Before load(): Pillow's TIFF decoder consumes the Orientation tag while loading.
            exif = exif_from_image(im)
            if content_type == "image/jpeg":
                # Decoding at 1/8 scale still parses every byte of entropy-coded data, so
                # truncation and corruption are caught at a fraction of the full decode cost.
                im.draft(None, (1, 1))
            im.load()
            mode = im.mode
            pil_format = im.format or _PIL_FORMAT[content_type]
            remaining = _pending_orientation(im)
            # TIFF and HEIF decoders rotate the pixels themselves; whatever is left is ours.
            decoded_w, decoded_h = (width, height) if content_type == "image/jpeg" else im.size
    except (Invalid, TooLarge, UnsupportedMedia):
        raise
    except Image.DecompressionBombError as exc:
        # Pillow's own process-wide guard fired while reading the header (far above our limit).
        raise TooLarge(
            f"The image has too many pixels; the limit is {max_pixels / 1e6:.1f} megapixels ({exc})."
        ) from exc
    except MemoryError as exc:
        raise TooLarge("The image is too large to decode.") from exc
    except Exception as exc:
        # Decoders raise OSError, SyntaxError, ValueError, EOFError, struct.error, RuntimeError
        # (libheif) ...; to the user they all mean the same thing.
        raise Invalid(
            f"The {label} file is damaged or truncated and cannot be decoded: {_reason(exc)}"
        ) from exc

    display_w, display_h = (decoded_h, decoded_w) if remaining >= 5 else (decoded_w, decoded_h)
    stored_w, stored_h = (display_h, display_w) if exif.orientation >= 5 else (display_w, display_h)
    return ImageInfo(
        content_type=content_type,
        format=pil_format,
        mode=mode,
        width=stored_w,
        height=stored_h,
        orientation=exif.orientation,
        display_width=display_w,
        display_height=display_h,
        size_bytes=size,
        exif=exif,
    )


def load_oriented(data: bytes, max_side: int | None = None, rotation: int = 0) -> Image.Image:
    """Decode validated bytes to an upright RGB (sRGB) image.

    The EXIF orientation is applied, then `max_side` (if given) bounds the long side without ever
    upscaling, then the user's extra clockwise `rotation` (0/90/180/270) is applied on top.
    JPEGs are decoded directly at a reduced scale when that is enough (Image.draft).
    """
    user_transpose = _rotation_transpose(rotation)
    if max_side is not None and max_side < 1:
        raise ValueError("max_side must be positive")
    content_type = sniff_format(data)
    if content_type is None:
        raise UnsupportedMedia(f"The file is not a supported image; upload {SUPPORTED_TYPES_TEXT}.")
    try:
        with _open(data, content_type) as im:
            target = _fit(im.size, max_side)
            if target != im.size:
                # Ask libjpeg for at least twice the target (DCT scaling by 1/2, 1/4 or 1/8), then
                # finish with a proper filter: fast, and without the aliasing of a bare 1/8 decode.
                im.draft(None, (target[0] * 2, target[1] * 2))
            im.load()
            orientation = _pending_orientation(im)
            icc = im.info.get("icc_profile")
            # Everything below makes new images, except in the no-op case; copy there, because
            # leaving the `with` block frees the decoded pixels of `im`.
            out = _normalise_mode(im)
            target = _fit(out.size, max_side)
            if target != out.size:
                out = out.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
            out = _flatten(_to_srgb(out, icc))
            if orientation in _ORIENTATION_TRANSPOSE:
                out = out.transpose(_ORIENTATION_TRANSPOSE[orientation])
            if user_transpose is not None:
                out = out.transpose(user_transpose)
            return out.copy() if out is im else out
    except (Invalid, TooLarge, UnsupportedMedia):
        raise
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"The image has too many pixels to process safely ({exc}).") from exc
    except Exception as exc:
        raise Invalid(f"The image cannot be decoded: {_reason(exc)}") from exc


def make_thumbnail(data: bytes, size: int, rotation: int = 0) -> bytes:
    """Upright JPEG whose long side is at most `size` (never upscaled); sRGB, no metadata.

    JPEG rather than WebP: every client decodes it, and progressive JPEG renders early on slow links.
    No EXIF is written, so viewers cannot rotate the already-upright pixels a second time.
    """
    image = load_oriented(data, max_side=size, rotation=rotation)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY, progressive=True, optimize=True)
    return buffer.getvalue()


# -- helpers ---------------------------------------------------------------------------------


@contextmanager
def _open(data: bytes, content_type: str) -> Iterator[Image.Image]:
    with Image.open(io.BytesIO(data), formats=(_PIL_FORMAT[content_type],)) as im:
        yield im


def _require_strict_decoding() -> None:
    # The damaged-file check relies on Pillow raising for truncated data; a module that flips
    # this process-wide switch would make corrupt uploads pass silently, so fail loudly instead.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False: uploads rely on it")


def _pending_orientation(im: Image.Image) -> int:
    """Orientation still to apply to the decoded pixels (TIFF/HEIF decoders already applied theirs)."""
    if im.format == "HEIF":
        return 1  # libheif applied the HEIF transforms; pillow-heif resets the EXIF tag to 1
    try:
        return parse_orientation(im.getexif().get(0x0112))
    except Exception:
        return 1


def _rotation_transpose(rotation: int) -> Image.Transpose | None:
    if not isinstance(rotation, int) or rotation % 90 != 0:
        raise Invalid(f"Rotation must be 0, 90, 180 or 270 degrees, not {rotation!r}.")
    return _ROTATION_TRANSPOSE.get(rotation % 360)


def _fit(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    width, height = size
    longest = max(width, height)
    if max_side is None or longest <= max_side:
        return size
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _normalise_mode(im: Image.Image) -> Image.Image:
    """Bring any decoded mode to L, LA, RGB, RGBA or CMYK, which resize and ICC handle well."""
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return im
    if mode in ("P", "PA"):
        return im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I") or mode == "F":
        # 16/32-bit greyscale: Pillow's convert() clips at 255 (white picture); scale instead.
        array = np.asarray(im, dtype=np.float64)
        peak = float(array.max()) if array.size else 0.0
        if peak > 255:
            array = array * (255.0 / (65535.0 if peak <= 65535 else peak))
        return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "L")
    return im.convert("RGB")  # YCbCr, LAB, HSV, RGBX, RGBa ...


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert from the embedded ICC profile to sRGB; on any profile trouble, fall back to Pillow."""
    if icc and im.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            description = ImageCms.getProfileDescription(source) or ""
            if not (im.mode in ("RGB", "RGBA") and "srgb" in description.lower()):
                out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
                # A fresh sRGB profile per call: lcms profile objects are not safe to share across threads.
                srgb = ImageCms.createProfile("sRGB")
                converted = ImageCms.profileToProfile(im, source, srgb, outputMode=out_mode)
                if converted is not None:
                    return converted
        except Exception:
            pass  # broken or unusual profile: plain conversion below is still a sane picture
    return im


def _flatten(im: Image.Image) -> Image.Image:
    """RGB output; transparency is composited over white (black would hide dark logos and text)."""
    if im.mode in ("RGBA", "LA"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "its header cannot be parsed"
    # Pillow messages sometimes embed object reprs ("<_io.BytesIO object at 0x7f...>"): noise to a user.
    text = re.sub(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>", "", str(exc)).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
