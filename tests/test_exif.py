"""services.photos.exif on the real camera JPEGs (iterated from ground_truth.json) and on malformed EXIF."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image, features
from PIL.TiffImagePlugin import IFDRational

from services.photos.exif import ExifData, read_exif
from tests.paths import TESTDATA_DIR

EXIF_DIR = TESTDATA_DIR / "exif"
GPS_TOLERANCE_DEG = 1e-5


def _ground_truth() -> dict[str, dict[str, Any]]:
    path = EXIF_DIR / "ground_truth.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


GROUND_TRUTH = _ground_truth()
NAMES = sorted(GROUND_TRUTH)
needs_testdata = pytest.mark.skipif(not GROUND_TRUTH, reason=f"no EXIF test data under {EXIF_DIR}")


def _image_path(name: str) -> Path:
    return EXIF_DIR / "images" / name


def _parse(value: str) -> datetime:
    return datetime.strptime(value, "%Y:%m:%d %H:%M:%S")


def _expected_capture(truth: dict[str, Any]) -> tuple[str | None, str | None]:
    """Our documented fallback: DateTimeOriginal, else DateTimeDigitized, else IFD0 DateTime, else none."""
    for field, source in (
        ("datetime_original", "DateTimeOriginal"),
        ("datetime_digitized", "DateTimeDigitized"),
        ("datetime", "DateTime"),
    ):
        if truth.get(field):
            return truth[field], source
    return None, None


@needs_testdata
@pytest.mark.parametrize("name", NAMES)
def test_capture_time_matches_ground_truth(name: str) -> None:
    truth = GROUND_TRUTH[name]
    exif = read_exif(_image_path(name).read_bytes())
    expected, source = _expected_capture(truth)
    assert exif.taken_at_source == source
    if expected is None:
        assert exif.taken_at is None
        return
    assert exif.taken_at is not None
    # Sub-second tags may add microseconds; the ground truth has whole seconds.
    assert exif.taken_at.replace(microsecond=0, tzinfo=None) == _parse(expected)
    if source != "DateTimeOriginal":
        return  # the ground truth records only OffsetTimeOriginal
    if truth.get("offset_time_original"):
        assert exif.taken_at_offset == truth["offset_time_original"]
        assert exif.taken_at.utcoffset() is not None
    else:
        # No offset recorded for this timestamp: stays naive camera-local time, no zone is guessed.
        assert exif.taken_at.tzinfo is None
        assert exif.taken_at_offset is None


@needs_testdata
@pytest.mark.parametrize("name", NAMES)
def test_gps_matches_ground_truth(name: str) -> None:
    truth = GROUND_TRUTH[name]
    gps = read_exif(_image_path(name).read_bytes()).gps
    expected = truth.get("gps")
    if expected is None or (expected["lat"] == 0 and expected["lon"] == 0):
        # No GPS block, or the all-zero placeholder some phones write: no location.
        assert gps is None
        return
    assert gps is not None
    assert abs(gps.lat - expected["lat"]) < GPS_TOLERANCE_DEG
    assert abs(gps.lon - expected["lon"]) < GPS_TOLERANCE_DEG
    if expected.get("alt_m") is not None:
        assert gps.alt is not None
        assert abs(gps.alt - expected["alt_m"]) < 0.01


@needs_testdata
@pytest.mark.parametrize("name", NAMES)
def test_orientation_and_camera_match_ground_truth(name: str) -> None:
    truth = GROUND_TRUTH[name]
    exif = read_exif(_image_path(name).read_bytes())
    assert exif.orientation == (truth.get("orientation") or 1)  # absent tag means "as stored"
    assert exif.make == truth.get("make")
    assert exif.model == truth.get("model")
    assert exif.has_exif == truth["has_exif"]


@needs_testdata
def test_files_without_exif_get_no_date_and_no_location() -> None:
    names = [n for n in NAMES if not GROUND_TRUTH[n]["has_exif"]]
    assert names, "the data set is documented to contain files without EXIF"
    for name in names:
        exif = read_exif(_image_path(name).read_bytes())
        assert exif == ExifData(), name


@needs_testdata
def test_all_zero_gps_is_no_location() -> None:
    zero = [
        n for n in NAMES if (g := GROUND_TRUTH[n].get("gps")) is not None and g["lat"] == 0 and g["lon"] == 0
    ]
    assert zero, "the data set is documented to contain an all-zero GPS block"
    for name in zero:
        exif = read_exif(_image_path(name).read_bytes())
        assert exif.has_exif
        assert exif.gps is None, name


# -- synthetic EXIF ----------------------------------------------------------------------------


def _exif_block(
    ifd0: dict[int, Any] | None = None, exif: dict[int, Any] | None = None, gps: dict[int, Any] | None = None
) -> Image.Exif:
    block = Image.Exif()
    for tag, value in (ifd0 or {}).items():
        block[tag] = value
    if exif:
        block.get_ifd(ExifTags.IFD.Exif).update(exif)
    if gps:
        block.get_ifd(ExifTags.IFD.GPSInfo).update(gps)
    return block


def _jpeg_with(block: Image.Exif) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 120, 150)).save(buffer, "JPEG", exif=block)
    return buffer.getvalue()


def _dms(degrees: int, minutes: int, seconds_x100: int) -> tuple[IFDRational, ...]:
    return (IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds_x100, 100))


def test_full_block_with_offset_southwest_gps_and_negative_altitude() -> None:
    block = _exif_block(
        ifd0={
            ExifTags.Base.Make: "Cam\x00trailing junk",
            ExifTags.Base.Model: "  Model X  ",
            ExifTags.Base.Orientation: 6,
            ExifTags.Base.DateTime: "2022:01:01 00:00:00",
        },
        exif={
            ExifTags.Base.DateTimeOriginal: "2021:06:15 14:30:05",
            ExifTags.Base.OffsetTimeOriginal: "+02:00",
            ExifTags.Base.SubsecTimeOriginal: "25",
        },
        gps={
            ExifTags.GPS.GPSLatitudeRef: "S",
            ExifTags.GPS.GPSLatitude: _dms(33, 51, 3150),
            ExifTags.GPS.GPSLongitudeRef: "W",
            ExifTags.GPS.GPSLongitude: _dms(70, 30, 0),
            ExifTags.GPS.GPSAltitudeRef: b"\x01",  # below sea level
            ExifTags.GPS.GPSAltitude: IFDRational(123, 2),
        },
    )
    exif = read_exif(_jpeg_with(block))
    assert exif.taken_at == datetime(2021, 6, 15, 14, 30, 5, 250000, tzinfo=timezone(timedelta(hours=2)))
    assert exif.taken_at_source == "DateTimeOriginal"
    assert exif.taken_at_offset == "+02:00"
    assert exif.gps is not None
    assert exif.gps.lat == pytest.approx(-(33 + 51 / 60 + 31.5 / 3600))
    assert exif.gps.lon == pytest.approx(-70.5)
    assert exif.gps.alt == pytest.approx(-61.5)
    assert (exif.make, exif.model, exif.orientation) == ("Cam", "Model X", 6)


def test_offset_of_another_timestamp_is_not_borrowed() -> None:
    # OffsetTime belongs to IFD0 DateTime (often the last edit), not to DateTimeOriginal.
    block = _exif_block(
        exif={ExifTags.Base.DateTimeOriginal: "2021:06:15 14:30:05", ExifTags.Base.OffsetTime: "-05:00"}
    )
    exif = read_exif(_jpeg_with(block))
    assert exif.taken_at == datetime(2021, 6, 15, 14, 30, 5)
    assert exif.taken_at_offset is None


def test_fallback_to_digitized_then_ifd0_datetime() -> None:
    digitized = _exif_block(
        ifd0={ExifTags.Base.DateTime: "2020:02:02 02:02:02"},
        exif={ExifTags.Base.DateTimeDigitized: "2019:01:01 01:01:01"},
    )
    exif = read_exif(_jpeg_with(digitized))
    assert (exif.taken_at, exif.taken_at_source) == (datetime(2019, 1, 1, 1, 1, 1), "DateTimeDigitized")
    only_ifd0 = _exif_block(ifd0={ExifTags.Base.DateTime: "2020:02:02 02:02:02"})
    exif = read_exif(_jpeg_with(only_ifd0))
    assert (exif.taken_at, exif.taken_at_source) == (datetime(2020, 2, 2, 2, 2, 2), "DateTime")


def test_malformed_values_are_dropped_not_raised() -> None:
    block = _exif_block(
        ifd0={
            ExifTags.Base.Make: b"\x00\x00",
            ExifTags.Base.Model: "   ",
            ExifTags.Base.Orientation: 9,
            ExifTags.Base.DateTime: "0000:00:00 00:00:00",
        },
        exif={
            ExifTags.Base.DateTimeOriginal: "    :  :     :  :  ",
            ExifTags.Base.DateTimeDigitized: "2019:13:45 99:99:99",
            ExifTags.Base.OffsetTimeOriginal: "garbage",
        },
        gps={
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (IFDRational(1, 0), IFDRational(0, 0), IFDRational(0, 1)),
            ExifTags.GPS.GPSLongitude: (IFDRational(1, 1), IFDRational(0, 1), IFDRational(0, 1)),
        },
    )
    exif = read_exif(_jpeg_with(block))
    assert exif == ExifData(has_exif=True)


def test_out_of_range_gps_and_zero_denominator_altitude() -> None:
    bad_latitude = _exif_block(
        gps={ExifTags.GPS.GPSLatitude: _dms(95, 0, 0), ExifTags.GPS.GPSLongitude: _dms(10, 0, 0)}
    )
    assert read_exif(_jpeg_with(bad_latitude)).gps is None
    no_altitude = _exif_block(
        gps={
            ExifTags.GPS.GPSLatitude: _dms(10, 0, 0),
            ExifTags.GPS.GPSLongitude: _dms(20, 0, 0),
            ExifTags.GPS.GPSAltitude: IFDRational(5, 0),
        }
    )
    gps = read_exif(_jpeg_with(no_altitude)).gps
    assert gps is not None
    assert (gps.lat, gps.lon, gps.alt) == (10.0, 20.0, None)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00II*\x00\xff\xff\xff\xff",  # EXIF pointing nowhere
        b"\xff\xd8\xff\xe1\x00\x08Exif\x00\x00" + b"\x00" * 64,
    ],
)
def test_garbage_never_raises(data: bytes) -> None:
    # Nothing is invented from bytes that hold no readable EXIF: every field keeps its default.
    assert read_exif(data) == ExifData()


def _encode(fmt: str, block: Image.Exif) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 100, 50)).save(buffer, fmt, exif=block.tobytes())
    return buffer.getvalue()


FORMATS_WITH_EXIF = ["JPEG", "PNG", "WEBP", "TIFF", "HEIF"] + (["AVIF"] if features.check("avif") else [])


@pytest.mark.parametrize("fmt", FORMATS_WITH_EXIF)
def test_exif_is_read_from_every_format(fmt: str) -> None:
    block = _exif_block(
        ifd0={ExifTags.Base.Make: "Maker", ExifTags.Base.Model: "M1", ExifTags.Base.Orientation: 6},
        exif={ExifTags.Base.DateTimeOriginal: "2015:05:05 10:20:30"},
        gps={
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: _dms(48, 51, 0),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: _dms(2, 21, 0),
        },
    )
    exif = read_exif(_encode(fmt, block))
    assert (exif.make, exif.model) == ("Maker", "M1")
    assert exif.taken_at == datetime(2015, 5, 5, 10, 20, 30)
    # HEIF: libheif rotates the pixels itself (container transforms), leaving nothing to apply.
    assert exif.orientation == (1 if fmt == "HEIF" else 6)
    assert exif.gps is not None
    assert exif.gps.lat == pytest.approx(48.85)
    assert exif.gps.lon == pytest.approx(2.35)
