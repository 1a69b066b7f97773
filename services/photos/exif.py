"""EXIF reading: capture time, GPS, camera and orientation, from any image format Pillow opens.

Pure functions, no database. EXIF written by cameras is often malformed (NUL-padded strings,
rationals with a zero denominator, placeholder dates such as "    :  :     :  :  "), so every
field is read on its own and a bad value only drops that field: these functions never raise.
A capture time is only ever taken from the file's own tags; nothing is invented (no file mtime).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import pillow_heif
from PIL import ExifTags, Image

# HEIC/HEIF support for Image.open; registering twice (images.py does too) is harmless.
pillow_heif.register_heif_opener()

TakenAtSource = Literal["DateTimeOriginal", "DateTimeDigitized", "DateTime"]

# The formats whose EXIF we read. Restricting Image.open to these keeps Pillow's many obscure
# decoders (EPS goes through Ghostscript, for instance) away from uploaded bytes.
PIL_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "GIF", "HEIF", "AVIF")

_TAG_MAKE = ExifTags.Base.Make
_TAG_MODEL = ExifTags.Base.Model
_TAG_ORIENTATION = ExifTags.Base.Orientation
# Photo.camera_make and camera_model are String(200): longer EXIF text is cut, not refused.
CAMERA_TEXT_MAX_LENGTH = 200
_TAG_DATETIME = ExifTags.Base.DateTime
_TAG_DATETIME_ORIGINAL = ExifTags.Base.DateTimeOriginal
_TAG_DATETIME_DIGITIZED = ExifTags.Base.DateTimeDigitized
_TAG_OFFSET_TIME = ExifTags.Base.OffsetTime
_TAG_OFFSET_TIME_ORIGINAL = ExifTags.Base.OffsetTimeOriginal
_TAG_OFFSET_TIME_DIGITIZED = ExifTags.Base.OffsetTimeDigitized
_TAG_SUBSEC = ExifTags.Base.SubsecTime
_TAG_SUBSEC_ORIGINAL = ExifTags.Base.SubsecTimeOriginal
_TAG_SUBSEC_DIGITIZED = ExifTags.Base.SubsecTimeDigitized

# Preference order for the capture time: (source name, datetime tag, offset tag, sub-second tag).
_DATE_SOURCES: tuple[tuple[TakenAtSource, int, int, int], ...] = (
    ("DateTimeOriginal", _TAG_DATETIME_ORIGINAL, _TAG_OFFSET_TIME_ORIGINAL, _TAG_SUBSEC_ORIGINAL),
    ("DateTimeDigitized", _TAG_DATETIME_DIGITIZED, _TAG_OFFSET_TIME_DIGITIZED, _TAG_SUBSEC_DIGITIZED),
    ("DateTime", _TAG_DATETIME, _TAG_OFFSET_TIME, _TAG_SUBSEC),
)

# "YYYY:MM:DD HH:MM:SS" is the standard; some writers use '-' or '/' or a 'T', drop the seconds,
# or append fractions and a UTC offset. Anything else (blank placeholders) does not match.
_DATETIME_RE = re.compile(
    r"^\s*(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})[ T]+(\d{1,2}):(\d{1,2})"
    r"(?::(\d{1,2})(?:[.,](\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)
_OFFSET_RE = re.compile(r"^\s*([+-])(\d{2}):?(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class GpsPosition:
    lat: float  # signed decimal degrees, south negative
    lon: float  # signed decimal degrees, west negative
    alt: float | None = None  # metres, negative below sea level


@dataclass(frozen=True, slots=True)
class ExifData:
    has_exif: bool = False
    # Naive (camera local time, zone unknown) unless the file records the matching OffsetTime* tag.
    taken_at: datetime | None = None
    taken_at_source: TakenAtSource | None = None
    taken_at_offset: str | None = None  # "+02:00" style, only when the file records it
    gps: GpsPosition | None = None
    make: str | None = None
    model: str | None = None
    # EXIF Orientation 1..8 that a viewer applies to the stored pixels; 1 when absent or invalid,
    # and 1 for HEIF, whose decoder already applies the container's own transforms.
    orientation: int = 1


def read_exif(data: bytes) -> ExifData:
    """EXIF of an encoded image; an empty ExifData when the bytes cannot be opened at all.

    Meant for bytes that already passed images.inspect_image: for a PNG whose eXIf chunk follows
    the pixel data, Pillow decodes the image to reach it.
    """
    try:
        with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as im:
            return exif_from_image(im)
    except Exception:
        # Never raise on metadata: an unreadable file simply has no EXIF we can use.
        return ExifData()


def exif_from_image(im: Image.Image) -> ExifData:
    """EXIF of an opened Pillow image. Call it before im.load(): Pillow's TIFF decoder applies
    and then deletes the Orientation tag while loading."""
    try:
        exif = im.getexif()
    except Exception:
        return ExifData()
    ifd0: dict[int, Any] = _safe_dict(exif)
    exif_ifd = _safe_ifd(exif, ExifTags.IFD.Exif)
    gps_ifd = _safe_ifd(exif, ExifTags.IFD.GPSInfo)

    taken_at, source, offset = _capture_time(ifd0, exif_ifd)
    return ExifData(
        has_exif=bool(ifd0 or exif_ifd or gps_ifd),
        taken_at=taken_at,
        taken_at_source=source,
        taken_at_offset=offset,
        gps=_gps(gps_ifd),
        make=_text(ifd0.get(_TAG_MAKE), CAMERA_TEXT_MAX_LENGTH),
        model=_text(ifd0.get(_TAG_MODEL), CAMERA_TEXT_MAX_LENGTH),
        # HEIF: libheif applies the container's rotation/mirror (irot/imir, authoritative there) and
        # pillow-heif resets the EXIF tag to 1, so the decoded picture is the stored one, upright.
        orientation=parse_orientation(ifd0.get(_TAG_ORIENTATION)),
    )


def parse_orientation(value: Any) -> int:
    """EXIF orientation 1..8; anything else (absent, 0, 9, garbage) means 'as stored', i.e. 1."""
    if isinstance(value, tuple | list) and value:
        value = value[0]
    if isinstance(value, bytes) and len(value) == 1:
        value = value[0]
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 1
    return number if 1 <= number <= 8 else 1


# -- helpers ---------------------------------------------------------------------------------


def _safe_dict(exif: Image.Exif) -> dict[int, Any]:
    try:
        return dict(exif.items())
    except Exception:
        return {}


def _safe_ifd(exif: Image.Exif, ifd: int) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(ifd).items())
    except Exception:
        # A broken sub-IFD pointer must not cost the other fields.
        return {}


def _text(value: Any, max_length: int | None = None) -> str | None:
    """An EXIF ASCII value as clean text: cut at the first NUL (C string), trimmed, at most
    `max_length` characters, None if empty."""
    if isinstance(value, tuple | list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    value = value.split("\x00", 1)[0]
    value = "".join(ch for ch in value if ch.isprintable()).strip()
    if max_length is not None:
        value = value[:max_length].rstrip()
    return value or None


def _capture_time(
    ifd0: dict[int, Any], exif_ifd: dict[int, Any]
) -> tuple[datetime | None, TakenAtSource | None, str | None]:
    for source, tag, offset_tag, subsec_tag in _DATE_SOURCES:
        # These belong in the Exif sub-IFD (DateTime in IFD0), but some writers misplace them.
        primary, secondary = (ifd0, exif_ifd) if tag == _TAG_DATETIME else (exif_ifd, ifd0)
        raw = primary.get(tag, secondary.get(tag))
        parsed = _parse_datetime(_text(raw))
        if parsed is None:
            continue
        when, inline_offset = parsed
        subsec = _text(primary.get(subsec_tag, secondary.get(subsec_tag)))
        if subsec and when.microsecond == 0:
            digits = "".join(ch for ch in subsec if ch.isdigit())[:6]
            if digits:
                when = when.replace(microsecond=int(digits.ljust(6, "0")))
        # Only the offset tag that belongs to this timestamp applies; borrowing another one
        # (e.g. OffsetTime, which goes with the last-edit time) would be a guess.
        offset = _parse_offset(_text(primary.get(offset_tag, secondary.get(offset_tag)))) or inline_offset
        if offset is not None:
            sign = 1 if offset[0] == "+" else -1
            delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
            when = when.replace(tzinfo=timezone(sign * delta))
        return when, source, offset
    return None, None, None


def _parse_datetime(text: str | None) -> tuple[datetime, str | None] | None:
    if not text:
        return None
    match = _DATETIME_RE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        when = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int(fraction[:6].ljust(6, "0")) if fraction else 0,
        )
    except ValueError:
        # "0000:00:00 00:00:00" and other impossible dates are placeholders, not times.
        return None
    inline_offset = "+00:00" if zone == "Z" else _parse_offset(zone)
    return when, inline_offset


def _parse_offset(text: str | None) -> str | None:
    """A UTC offset normalised to "+HH:MM", or None when absent or out of range."""
    if not text:
        return None
    match = _OFFSET_RE.match(text)
    if not match:
        return None
    sign, hours, minutes = match.groups()
    if int(hours) > 14 or int(minutes) >= 60:
        return None
    return f"{sign}{hours}:{minutes}"


def _number(value: Any) -> float | None:
    """A finite float from an EXIF number (IFDRational, int, float, (num, den)); None otherwise."""
    try:
        if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
            number = value[0] / value[1]
        else:
            number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    # Pillow turns x/0 rationals into NaN.
    return number if math.isfinite(number) else None


def _coordinate(value: Any, ref: Any, positive: str, negative: str, limit: float) -> float | None:
    parts = value if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [n for n in (_number(part) for part in parts) if n is not None]
    if len(numbers) != len(parts):
        return None
    degrees = sum(n / 60**i for i, n in enumerate(numbers))
    ref_text = (_text(ref) or "").upper()[:1]
    if ref_text == negative:
        degrees = -abs(degrees)
    elif ref_text == positive:
        degrees = abs(degrees)
    # No usable ref: keep the sign as written (most writers use N/E then).
    return degrees if abs(degrees) <= limit else None


def _gps(gps_ifd: dict[int, Any]) -> GpsPosition | None:
    if not gps_ifd:
        return None
    lat = _coordinate(
        gps_ifd.get(ExifTags.GPS.GPSLatitude), gps_ifd.get(ExifTags.GPS.GPSLatitudeRef), "N", "S", 90.0
    )
    lon = _coordinate(
        gps_ifd.get(ExifTags.GPS.GPSLongitude), gps_ifd.get(ExifTags.GPS.GPSLongitudeRef), "E", "W", 180.0
    )
    if lat is None or lon is None:
        return None
    if abs(lat) < 1e-9 and abs(lon) < 1e-9:
        # 0,0 is a placeholder some phones write without a fix, not a place in the Gulf of Guinea.
        return None
    return GpsPosition(lat=lat, lon=lon, alt=_altitude(gps_ifd))


def _altitude(gps_ifd: dict[int, Any]) -> float | None:
    alt = _number(gps_ifd.get(ExifTags.GPS.GPSAltitude))
    if alt is None:
        return None
    ref = gps_ifd.get(ExifTags.GPS.GPSAltitudeRef)
    if isinstance(ref, bytes | tuple | list):
        ref = ref[0] if ref else 0
    # GPSAltitudeRef 1 means "below sea level"; the value itself is unsigned.
    return -abs(alt) if ref == 1 else alt
