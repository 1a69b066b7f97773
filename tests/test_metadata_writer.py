"""Metadata written into export copies, checked by reading it back with exiftool; zip streaming; names.

exiftool is the independent reader here (what digiKam and Lightroom users run), so it is required:
a missing exiftool fails these tests instead of skipping them (apt-get install libimage-exiftool-perl).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tempfile
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageOps

from core.errors import Invalid
from services.exports.metadata_writer import (
    FaceRegion,
    PhotoMetadata,
    compose_orientation,
    display_box_to_stored,
    rotate_box,
    write_metadata,
)
from services.exports.zipstream import ZipEntry, safe_unique_name, write_zip
from tests.paths import TESTDATA_DIR

pillow_heif.register_heif_opener()

EXIF_DIR = TESTDATA_DIR / "exif" / "images"
ROTATED_JPEG = EXIF_DIR / "exif_0011.jpg"  # Samsung GT-I9000, EXIF orientation 6, 640x480 stored
PLAIN_JPEG = EXIF_DIR / "exif_0001.jpg"  # Nikon, orientation 1, GPS
ORIENTATION_TAG = 0x0112


# -- helpers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def exiftool() -> str:
    path = shutil.which("exiftool")
    if path is None:
        pytest.fail("exiftool is required by these tests: apt-get install libimage-exiftool-perl")
    return path


def read_tags(exiftool: str, path: Path, *args: str, struct: bool = True) -> dict[str, Any]:
    """exiftool's JSON for one file: numeric values (-n), structures kept (-struct) or flattened."""
    out = subprocess.run(
        [exiftool, "-json", "-n", "-struct" if struct else "-nostruct", "-charset", "UTF8", *args, str(path)],
        capture_output=True,
        check=True,
    )
    return json.loads(out.stdout.decode("utf-8"))[0]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def real_photo(path: Path) -> bytes:
    assert path.is_file(), f"test photo missing: {path} (set SHOEBOX_SHARED_DIR)"
    return path.read_bytes()


def save(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def region_boxes(tags: dict[str, Any]) -> list[tuple[str | None, str | None, tuple[float, ...]]]:
    info = tags.get("RegionInfo") or {}
    out = []
    for region in as_list(info.get("RegionList")):
        area = region.get("Area", {})
        out.append((region.get("Name"), region.get("Type"), tuple(area.get(k) for k in "XYWH")))
    return out


def orient(image: Image.Image, orientation: int) -> Image.Image:
    """Pillow's own EXIF transpose (the independent reference): the picture as a viewer shows it."""
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    image.save(buffer, "PNG", exif=exif.tobytes())
    with Image.open(io.BytesIO(buffer.getvalue())) as tagged:
        return ImageOps.exif_transpose(tagged)


def rotate_cw(image: Image.Image, degrees: int) -> Image.Image:
    return image.rotate(-degrees, expand=True) if degrees % 360 else image.copy()


FULL_META = PhotoMetadata(
    tags=[("dog", "object"), ("espresso", "label"), ("food", "category"), ("Trip to Åre", "user")],
    people=["Alice"],
    caption="Café au lait — Zoë",
    faces=[FaceRegion("Zoë Ångström", (0.1, 0.2, 0.3, 0.25)), FaceRegion("Alice", (0.6, 0.5, 0.2, 0.2))],
)


# -- JPEG, the main case ---------------------------------------------------------------------------


def test_rotated_camera_jpeg_gets_every_field(exiftool: str, tmp_path: Path) -> None:
    original = real_photo(ROTATED_JPEG)
    before = read_tags(exiftool, ROTATED_JPEG, "-Make", "-Model", "-DateTimeOriginal", "-Orientation")
    assert before["Orientation"] == 6

    written = write_metadata(original, "image/jpeg", FULL_META)
    assert written.embedded and written.sidecar_xmp is None
    tags = read_tags(exiftool, save(tmp_path, "out.jpg", written.data), "-a", "-G0")

    expected_keywords = ["dog", "espresso", "food", "Trip to Åre", "Alice", "Zoë Ångström"]
    assert tags["XMP:Subject"] == expected_keywords
    assert tags["IPTC:Keywords"] == expected_keywords
    assert tags["IPTC:CodedCharacterSet"] == "\x1b%G"
    assert tags["XMP:HierarchicalSubject"] == [
        "Objects|dog",
        "Labels|espresso",
        "Categories|food",
        "Tags|Trip to Åre",
        "People|Alice",
        "People|Zoë Ångström",
    ]
    assert tags["XMP:PersonInImage"] == ["Alice", "Zoë Ångström"]
    assert tags["XMP:Description"] == "Café au lait — Zoë"
    assert tags["IPTC:Caption-Abstract"] == "Café au lait — Zoë"
    # Existing EXIF survives, orientation untouched (none was asked for).
    assert tags["EXIF:Orientation"] == 6
    assert tags["EXIF:Make"] == before["Make"] == "SAMSUNG"
    assert tags["EXIF:Model"] == before["Model"]
    assert tags["EXIF:DateTimeOriginal"] == before["DateTimeOriginal"] == "2011:04:02 18:30:10"

    # MWG regions: stored (unrotated) size, areas in stored coordinates, x/y = centre.
    info = tags["XMP:RegionInfo"]
    assert info["AppliedToDimensions"] == {"W": 640, "H": 480, "Unit": "pixel"}
    regions = region_boxes({"RegionInfo": info})
    assert [(name, kind) for name, kind, _ in regions] == [("Zoë Ångström", "Face"), ("Alice", "Face")]
    # Orientation 6 shows stored (u, v) at displayed (1 - v, u): displayed box [x, y, w, h] is the
    # stored box [y, 1 - x - w, h, w]. Zoë: stored [0.2, 0.6, 0.25, 0.3] -> centre (0.325, 0.75).
    assert regions[0][2] == pytest.approx((0.325, 0.75, 0.25, 0.3), abs=1e-6)
    assert regions[1][2] == pytest.approx((0.6, 0.3, 0.2, 0.2), abs=1e-6)
    assert all(r.get("Area", {}).get("Unit") == "normalized" for r in info["RegionList"])

    # The flattened tag names digiKam users look at read back too.
    flat = read_tags(
        exiftool,
        tmp_path / "out.jpg",
        "-RegionName",
        "-RegionType",
        "-RegionAreaX",
        "-RegionAreaY",
        "-RegionAreaW",
        "-RegionAreaH",
        "-RegionAreaUnit",
        "-RegionAppliedToDimensionsW",
        "-RegionAppliedToDimensionsH",
        "-RegionAppliedToDimensionsUnit",
        struct=False,
    )
    assert flat["RegionName"] == ["Zoë Ångström", "Alice"]
    assert flat["RegionType"] == ["Face", "Face"]
    assert flat["RegionAreaX"] == pytest.approx([0.325, 0.6])
    assert flat["RegionAreaY"] == pytest.approx([0.75, 0.3])
    assert flat["RegionAreaW"] == pytest.approx([0.25, 0.2])
    assert flat["RegionAreaH"] == pytest.approx([0.3, 0.2])
    assert flat["RegionAreaUnit"] == ["normalized", "normalized"]
    assert (flat["RegionAppliedToDimensionsW"], flat["RegionAppliedToDimensionsH"]) == (640, 480)
    assert flat["RegionAppliedToDimensionsUnit"] == "pixel"

    # dc:subject and friends are Bags, as the schemas say (pyexiv2's list form would write a Seq).
    raw = subprocess.run([exiftool, "-b", "-XMP", str(tmp_path / "out.jpg")], capture_output=True).stdout
    assert b"<dc:subject>" in raw and b"<rdf:Seq>" not in raw


def test_image_data_untouched_and_exif_kept_on_every_real_photo(exiftool: str, tmp_path: Path) -> None:
    """Only metadata changes: the decoded pixels are identical and the camera EXIF is all there."""
    meta = PhotoMetadata(tags=[("dog", "object")], people=["Alice"])
    for path in [*sorted(EXIF_DIR.glob("*.jpg"))[:12], ROTATED_JPEG]:
        original = path.read_bytes()
        written = write_metadata(original, "image/jpeg", meta)
        assert written.embedded, path.name
        with Image.open(io.BytesIO(original)) as a, Image.open(io.BytesIO(written.data)) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b)), path.name
        out = save(tmp_path, path.name, written.data)
        exif_args = ["-EXIF:all", "-G1", "-a"]
        before = read_tags(exiftool, path, *exif_args)
        after = read_tags(exiftool, out, *exif_args)
        moved = {"IFD1:ThumbnailOffset", "SourceFile"}  # the thumbnail moves with the bigger APP1
        lost = {k for k in before if k not in moved and after.get(k) != before[k]}
        assert not lost, f"{path.name}: {sorted(lost)}"


def test_second_write_duplicates_nothing(exiftool: str, tmp_path: Path) -> None:
    long_tag = "a very long user tag " * 5  # > 64 bytes: IPTC gets a cut copy
    meta = PhotoMetadata(
        tags=[*FULL_META.tags, (long_tag, "user")],
        people=FULL_META.people,
        caption=FULL_META.caption,
        faces=FULL_META.faces,
    )
    once = write_metadata(real_photo(ROTATED_JPEG), "image/jpeg", meta)
    twice = write_metadata(once.data, "image/jpeg", meta)
    first = read_tags(exiftool, save(tmp_path, "1.jpg", once.data), "-G0")
    second = read_tags(exiftool, save(tmp_path, "2.jpg", twice.data), "-G0")
    for key in (
        "XMP:Subject",
        "XMP:HierarchicalSubject",
        "XMP:PersonInImage",
        "IPTC:Keywords",
        "XMP:Description",
        "XMP:RegionInfo",
    ):
        assert second[key] == first[key], key
    assert len(second["XMP:RegionInfo"]["RegionList"]) == 2
    keywords = second["IPTC:Keywords"]
    assert all(len(k.encode("utf-8")) <= 64 for k in keywords)
    assert long_tag.strip() in second["XMP:Subject"]
    assert len(keywords) == len(set(keywords)) == len(second["XMP:Subject"])


def test_existing_metadata_is_merged_not_replaced(exiftool: str, tmp_path: Path) -> None:
    path = save(tmp_path, "in.jpg", real_photo(PLAIN_JPEG))
    subprocess.run(
        [
            exiftool,
            "-q",
            "-overwrite_original",
            "-XMP-dc:Subject=holiday",
            "-XMP-dc:Subject=DOG",
            "-XMP-lr:HierarchicalSubject=Places|Italy",
            "-IPTC:Keywords=holiday",
            "-IPTC:Keywords=Italy",
            "-XMP-dc:Description-de=Urlaub",
            "-XMP-dc:Description=old caption",
            # Another program's regions: an unnamed face where ours is, and a pet elsewhere.
            "-XMP-mwg-rs:RegionInfo={AppliedToDimensions={W=640,H=480,Unit=pixel},RegionList=["
            "{Area={X=0.255,Y=0.31,W=0.3,H=0.25,Unit=normalized},Type=Face},"
            "{Area={X=0.8,Y=0.8,W=0.1,H=0.1,Unit=normalized},Type=Pet,Name=Rex}]}",
            str(path),
        ],
        check=True,
    )
    written = write_metadata(path.read_bytes(), "image/jpeg", FULL_META)
    tags = read_tags(exiftool, save(tmp_path, "out.jpg", written.data), "-G0")

    # Kept, ours added, "dog" not added twice next to "DOG", IPTC-only "Italy" joins XMP.
    assert tags["XMP:Subject"] == [
        "holiday",
        "DOG",
        "Italy",
        "espresso",
        "food",
        "Trip to Åre",
        "Alice",
        "Zoë Ångström",
    ]
    assert tags["IPTC:Keywords"] == tags["XMP:Subject"]
    assert tags["XMP:HierarchicalSubject"][0] == "Places|Italy"
    assert "Objects|dog" in tags["XMP:HierarchicalSubject"]
    assert tags["XMP:Description"] == "Café au lait — Zoë"
    assert tags["XMP:Description-de"] == "Urlaub"
    assert tags["EXIF:Make"] == "NIKON" and tags["EXIF:GPSLatitude"] == pytest.approx(43.4684417, abs=1e-6)
    regions = region_boxes({"RegionInfo": tags["XMP:RegionInfo"]})
    # The unnamed face overlapping Zoë's box took her name and our box; Rex is kept; Alice is new.
    assert [(name, kind) for name, kind, _ in regions] == [
        ("Zoë Ångström", "Face"),
        ("Rex", "Pet"),
        ("Alice", "Face"),
    ]
    assert regions[0][2] == pytest.approx((0.25, 0.325, 0.3, 0.25))  # orientation 1: centre of ours
    assert regions[1][2] == pytest.approx((0.8, 0.8, 0.1, 0.1))


def test_non_ascii_names_survive_in_xmp_and_iptc(exiftool: str, tmp_path: Path) -> None:
    names = ["Zoë Ångström", "Søren Kierkegaard", "王小明", "Đặng Thị Hương"]
    meta = PhotoMetadata(people=names, faces=[FaceRegion(names[0], (0.1, 0.1, 0.2, 0.2))])
    written = write_metadata(real_photo(PLAIN_JPEG), "image/jpeg", meta)
    tags = read_tags(exiftool, save(tmp_path, "out.jpg", written.data), "-G0")
    assert tags["XMP:Subject"] == names
    assert tags["IPTC:Keywords"] == names  # exiftool decodes IPTC by its CodedCharacterSet
    assert tags["IPTC:CodedCharacterSet"] == "\x1b%G"
    assert tags["XMP:RegionInfo"]["RegionList"][0]["Name"] == names[0]


def test_legacy_latin1_iptc_is_reencoded_as_utf8(exiftool: str, tmp_path: Path) -> None:
    path = save(tmp_path, "in.jpg", real_photo(PLAIN_JPEG))
    subprocess.run(
        [
            exiftool,
            "-q",
            "-overwrite_original",
            "-charset",
            "iptc=Latin",
            "-IPTC:Keywords=Café",
            "-IPTC:City=Zürich",
            str(path),
        ],
        check=True,
    )
    written = write_metadata(path.read_bytes(), "image/jpeg", PhotoMetadata(people=["Zoë"]))
    tags = read_tags(exiftool, save(tmp_path, "out.jpg", written.data), "-G0")
    assert tags["IPTC:Keywords"] == ["Café", "Zoë"]
    assert tags["IPTC:City"] == "Zürich"
    assert tags["IPTC:CodedCharacterSet"] == "\x1b%G"


def test_user_rotation_is_written_as_orientation_and_regions_follow(exiftool: str, tmp_path: Path) -> None:
    """A user turns the orientation-6 photo 90° more: viewers must show exactly that picture."""
    original = real_photo(ROTATED_JPEG)
    final = compose_orientation(6, 90)
    assert final == 3
    shown_box = (0.1, 0.2, 0.3, 0.25)  # on the picture as the user now sees it
    meta = PhotoMetadata(faces=[FaceRegion("Alice", shown_box)], orientation=final)
    written = write_metadata(original, "image/jpeg", meta)
    out = save(tmp_path, "out.jpg", written.data)
    tags = read_tags(exiftool, out, "-G0")
    assert tags["EXIF:Orientation"] == 3

    with Image.open(io.BytesIO(original)) as before, Image.open(out) as after:
        expected = rotate_cw(ImageOps.exif_transpose(before), 90)
        shown = ImageOps.exif_transpose(after)
        assert np.array_equal(np.asarray(shown), np.asarray(expected))
    # Orientation 3 (180°): the stored box is the displayed one turned half-way round.
    ((name, kind, area),) = region_boxes({"RegionInfo": tags["XMP:RegionInfo"]})
    assert (name, kind) == ("Alice", "Face")
    assert area == pytest.approx((1 - 0.1 - 0.15, 1 - 0.2 - 0.125, 0.3, 0.25))
    assert tags["XMP:RegionInfo"]["AppliedToDimensions"] == {"W": 640, "H": 480, "Unit": "pixel"}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_regions_land_on_the_face_in_every_orientation(
    exiftool: str, tmp_path: Path, orientation: int
) -> None:
    """A bright patch marks the face in the stored pixels; its box as displayed, written and read
    back with exiftool, must point at the same stored pixels."""
    stored = np.zeros((60, 100), dtype=np.uint8)
    stored[10:25, 55:85] = 255  # rows 10..25, columns 55..85
    image = Image.fromarray(stored)
    shown = np.asarray(orient(image, orientation))
    rows, cols = np.nonzero(shown)
    height, width = shown.shape
    box = (
        cols.min() / width,
        rows.min() / height,
        (cols.max() + 1 - cols.min()) / width,
        (rows.max() + 1 - rows.min()) / height,
    )
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    image.save(buffer, "PNG", exif=exif.tobytes())

    written = write_metadata(buffer.getvalue(), "image/png", PhotoMetadata(faces=[FaceRegion("A", box)]))
    assert written.embedded
    tags = read_tags(exiftool, save(tmp_path, "out.png", written.data))
    assert tags["Orientation"] == orientation
    assert tags["RegionInfo"]["AppliedToDimensions"] == {"W": 100, "H": 60, "Unit": "pixel"}
    ((_, _, area),) = region_boxes(tags)
    assert area == pytest.approx(((55 + 85) / 2 / 100, (10 + 25) / 2 / 60, 30 / 100, 15 / 60), abs=1e-6)


# -- other formats ---------------------------------------------------------------------------------


def _made_with_pillow(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 40)).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "content_type", "has_iptc"),
    [("PNG", "image/png", True), ("WEBP", "image/webp", False), ("TIFF", "image/tiff", True)],
)
def test_png_webp_tiff_carry_embedded_xmp(
    exiftool: str, tmp_path: Path, fmt: str, content_type: str, has_iptc: bool
) -> None:
    original = _made_with_pillow(fmt)
    written = write_metadata(original, content_type, FULL_META)
    assert written.embedded
    out = save(tmp_path, f"out.{fmt.lower()}", written.data)
    tags = read_tags(exiftool, out, "-G0")
    assert tags["XMP:Subject"] == ["dog", "espresso", "food", "Trip to Åre", "Alice", "Zoë Ångström"]
    assert "People|Zoë Ångström" in tags["XMP:HierarchicalSubject"]
    assert tags["XMP:Description"] == FULL_META.caption
    assert [r["Name"] for r in tags["XMP:RegionInfo"]["RegionList"]] == ["Zoë Ångström", "Alice"]
    assert tags["XMP:RegionInfo"]["AppliedToDimensions"] == {"W": 64, "H": 48, "Unit": "pixel"}
    assert ("IPTC:Keywords" in tags) is has_iptc  # WebP has no IPTC block; its XMP says it all
    with Image.open(io.BytesIO(original)) as a, Image.open(out) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(("fmt", "content_type"), [("GIF", "image/gif"), ("HEIF", "image/heic")])
def test_gif_and_heic_get_a_sidecar_exiftool_reads(
    exiftool: str, tmp_path: Path, fmt: str, content_type: str
) -> None:
    original = _made_with_pillow(fmt)
    meta = PhotoMetadata(
        tags=FULL_META.tags,
        people=FULL_META.people,
        caption=FULL_META.caption,
        faces=FULL_META.faces,
        orientation=compose_orientation(1, 270),
    )
    written = write_metadata(original, content_type, meta)
    assert written.data == original  # untouched
    assert written.sidecar_xmp is not None and not written.embedded
    sidecar = save(tmp_path, f"photo.{fmt.lower()}.xmp", written.sidecar_xmp)
    tags = read_tags(exiftool, sidecar, "-G0")
    assert tags["File:FileType"] == "XMP"
    assert tags["XMP:Subject"] == ["dog", "espresso", "food", "Trip to Åre", "Alice", "Zoë Ångström"]
    assert tags["XMP:HierarchicalSubject"][-1] == "People|Zoë Ångström"
    assert tags["XMP:Description"] == FULL_META.caption
    assert tags["XMP:Orientation"] == 8
    info = tags["XMP:RegionInfo"]
    assert info["AppliedToDimensions"] == {"W": 64, "H": 48, "Unit": "pixel"}
    assert [(r["Name"], r["Type"]) for r in info["RegionList"]] == [
        ("Zoë Ångström", "Face"),
        ("Alice", "Face"),
    ]
    # Orientation 8 shows stored (u, v) at (v, 1 - u): displayed [x, y, w, h] is stored [1 - y - h, x, h, w].
    area = info["RegionList"][0]["Area"]
    assert (area["X"], area["Y"], area["W"], area["H"]) == pytest.approx((0.675, 0.25, 0.25, 0.3))


def test_heic_sidecar_keeps_the_files_own_xmp(exiftool: str, tmp_path: Path) -> None:
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        ' xmp:Rating="4"><dc:subject><rdf:Bag><rdf:li>holiday</rdf:li><rdf:li>Dog</rdf:li></rdf:Bag>'
        '</dc:subject></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "blue").save(buffer, "HEIF", xmp=packet.encode("utf-8"))
    written = write_metadata(buffer.getvalue(), "image/heic", FULL_META)
    assert written.data == buffer.getvalue() and written.sidecar_xmp is not None
    tags = read_tags(exiftool, save(tmp_path, "p.heic.xmp", written.sidecar_xmp), "-G0")
    assert tags["XMP:Subject"][:3] == ["holiday", "Dog", "espresso"]
    assert tags["XMP:Rating"] == 4
    assert "XMP:Orientation" not in tags  # none asked for


def test_unreadable_bytes_still_give_a_sidecar(exiftool: str, tmp_path: Path) -> None:
    junk = b"\xff\xd8\xff\xe0 this is not really a jpeg"
    written = write_metadata(junk, "image/jpeg", PhotoMetadata(tags=[("dog", "object")]))
    assert written.data == junk and written.sidecar_xmp is not None
    tags = read_tags(exiftool, save(tmp_path, "x.jpg.xmp", written.sidecar_xmp))
    assert as_list(tags["Subject"]) == ["dog"]


def test_input_untouched_and_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, temp = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    original = real_photo(ROTATED_JPEG)
    digest = hashlib.sha256(original).hexdigest()
    write_metadata(original, "image/jpeg", FULL_META)
    write_metadata(_made_with_pillow("GIF"), "image/gif", FULL_META)
    assert hashlib.sha256(original).hexdigest() == digest
    assert ROTATED_JPEG.read_bytes() == original
    assert list(work.iterdir()) == [] and list(temp.iterdir()) == []


def test_bad_input_is_refused() -> None:
    with pytest.raises(Invalid):
        write_metadata(b"", "image/jpeg", PhotoMetadata(tags=[("dog", "animal")]))
    with pytest.raises(Invalid):
        write_metadata(b"", "image/jpeg", PhotoMetadata(orientation=9))


# -- orientation algebra ---------------------------------------------------------------------------


def test_compose_orientation_matches_real_pixel_rotation() -> None:
    """For every orientation o and user rotation r, showing the stored pixels with the composed
    orientation equals turning the upright picture (Pillow's exif_transpose) by r clockwise."""
    stored = Image.fromarray(np.arange(15, dtype=np.uint8).reshape(3, 5))  # asymmetric, non-square
    for o in range(1, 9):
        upright = orient(stored, o)
        for r in (0, 90, 180, 270, 360, -90, 450):
            expected = np.asarray(rotate_cw(upright, r))
            actual = np.asarray(orient(stored, compose_orientation(o, r)))
            assert np.array_equal(actual, expected), (o, r)


def test_compose_orientation_table() -> None:
    # Rows: EXIF orientation 1..8; columns: user rotation 0, 90, 180, 270 (clockwise).
    table = {
        1: (1, 6, 3, 8),
        2: (2, 7, 4, 5),
        3: (3, 8, 1, 6),
        4: (4, 5, 2, 7),
        5: (5, 2, 7, 4),
        6: (6, 3, 8, 1),
        7: (7, 4, 5, 2),
        8: (8, 1, 6, 3),
    }
    for o, row in table.items():
        assert tuple(compose_orientation(o, r) for r in (0, 90, 180, 270)) == row


@pytest.mark.parametrize(("orientation", "rotation"), [(0, 0), (9, 0), (1, 45), (1, 91)])
def test_compose_orientation_refuses_nonsense(orientation: int, rotation: int) -> None:
    with pytest.raises(Invalid):
        compose_orientation(orientation, rotation)


def test_box_helpers_match_pixels() -> None:
    stored = np.zeros((40, 90), dtype=np.uint8)
    stored[5:17, 60:81] = 255
    sh, sw = stored.shape
    stored_box = (60 / sw, 5 / sh, 21 / sw, 12 / sh)
    for o in range(1, 9):
        shown = np.asarray(orient(Image.fromarray(stored), o))
        rows, cols = np.nonzero(shown)
        h, w = shown.shape
        shown_box = (cols.min() / w, rows.min() / h, (np.ptp(cols) + 1) / w, (np.ptp(rows) + 1) / h)
        assert display_box_to_stored(shown_box, o) == pytest.approx(stored_box), o
        for r in (90, 180, 270):
            turned = np.asarray(rotate_cw(Image.fromarray(shown), r))
            rows, cols = np.nonzero(turned)
            th, tw = turned.shape
            turned_box = (cols.min() / tw, rows.min() / th, (np.ptp(cols) + 1) / tw, (np.ptp(rows) + 1) / th)
            assert rotate_box(shown_box, r) == pytest.approx(turned_box), (o, r)


# -- safe names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("IMG_0001.JPG", "IMG_0001.JPG"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\win.ini", "win.ini"),
        ("C:\\Users\\bob\\IMG 1.HEIC", "IMG 1.HEIC"),
        ("/abs/path/photo.png", "photo.png"),
        ("", "photo"),
        ("..", "photo"),
        ("...", "photo"),
        (".jpg", "photo.jpg"),
        (".hidden", "photo.hidden"),  # a leading-dot name is read as an extension
        ("  spaced .jpg", "spaced.jpg"),
        ("trailing dots...", "trailing dots"),
        ("tab\tnew\nline\x00nul\x7f.jpg", "tab_new_line_nul_.jpg"),
        ('a<b>c:d"e|f?g*h.png', "a_b_c_d_e_f_g_h.png"),
        ("CON.jpg", "CON_.jpg"),
        ("nul", "nul_"),
        ("com1.tar.gz", "com1_.tar.gz"),
        ("Lpt9 .txt", "Lpt9_.txt"),
        ("console.jpg", "console.jpg"),
        ("Zoë Ångström.jpeg", "Zoë Ångström.jpeg"),
        ("Zoe\u0308.jpg", "Zoë.jpg"),  # NFC
        ("rtl\u202egpj.exe", "rtlgpj.exe"),  # no bidi override tricks
        ("archive.weird-extension!", "archive.weird-extension!"),
    ],
)
def test_safe_unique_name_cases(name: str, expected: str) -> None:
    assert safe_unique_name(name, set()) == expected


def test_safe_unique_name_dedupes_case_insensitively() -> None:
    used: set[str] = set()
    got = [safe_unique_name(n, used) for n in ["a.jpg", "A.JPG", "a.jpg", "dir/a.jpg", "a (2).jpg", "b"]]
    assert got == ["a.jpg", "A (2).JPG", "a (3).jpg", "a (4).jpg", "a (2) (2).jpg", "b"]
    assert "a.jpg" in used and "a (2).jpg" in used
    taken = {"metadata.json"}
    assert safe_unique_name("METADATA.JSON", taken) == "METADATA (2).JSON"


def test_safe_unique_name_limits_length_and_keeps_extension() -> None:
    used: set[str] = set()
    long = "é" * 300 + ".jpeg"
    first = safe_unique_name(long, used)
    second = safe_unique_name(long, used)
    for name in (first, second):
        assert len(name.encode("utf-8")) <= 200 and name.endswith(".jpeg")
    assert second.endswith(" (2).jpeg") and first != second
    assert len(safe_unique_name("x" * 50, set(), max_bytes=20)) == 20


# -- zip streaming ---------------------------------------------------------------------------------

CHUNK = 64 * 1024


def _chunks(seed: int, count: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(count):
        yield rng.randbytes(CHUNK)


def _digest(seed: int, count: int) -> str:
    h = hashlib.sha256()
    for chunk in _chunks(seed, count):
        h.update(chunk)
    return h.hexdigest()


def _big_entries(n: int, chunks_each: int) -> Iterator[ZipEntry]:
    for i in range(n):
        name = f"photo_{i}.jpg" if i % 5 else f"data_{i}.json"
        yield ZipEntry(name, _chunks(i, chunks_each), date_time=datetime(2020, 5, 17, 12, 30, 10))


def test_zip_of_50_mb_is_written_with_bounded_memory(tmp_path: Path) -> None:
    n, chunks_each = 100, 8  # 100 entries x 512 KiB = 50 MiB
    dest = tmp_path / "export.zip"
    tracemalloc.start()
    try:
        count = write_zip(dest, _big_entries(n, chunks_each))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while writing 50 MiB"
    assert dest.stat().st_size > 50 * 1024 * 1024
    with zipfile.ZipFile(dest) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        assert len(infos) == n
        for i, info in enumerate(infos):
            assert info.file_size == chunks_each * CHUNK
            assert info.date_time == (2020, 5, 17, 12, 30, 10)
            h = hashlib.sha256()
            with zf.open(info) as fp:
                while block := fp.read(CHUNK):
                    h.update(block)
            assert h.hexdigest() == _digest(i, chunks_each), info.filename


def test_zip_compression_names_and_times(tmp_path: Path) -> None:
    entries = [
        ZipEntry("Zoë.jpg", b"\xff\xd8jpeg" * 100, date_time=datetime(1975, 1, 1)),
        ZipEntry("b.heic", b"heic" * 100),
        ZipEntry("c.png", b"png" * 100),
        ZipEntry("d.webp", b"webp" * 100),
        ZipEntry("Zoë.jpg.xmp", b"<x:xmpmeta/>" * 100),
        ZipEntry("metadata/photos.json", (b'{"a": 1}' for _ in range(100))),
        ZipEntry("photos.csv", b"id,name\n" * 100),
        ZipEntry("raw.bin", b"\0" * 100, compress=False),
    ]
    buffer = io.BytesIO()
    assert write_zip(buffer, entries) == len(entries)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as zf:
        kinds = {i.filename: i.compress_type for i in zf.infolist()}
        assert kinds == {
            "Zoë.jpg": zipfile.ZIP_STORED,
            "b.heic": zipfile.ZIP_STORED,
            "c.png": zipfile.ZIP_STORED,
            "d.webp": zipfile.ZIP_STORED,
            "Zoë.jpg.xmp": zipfile.ZIP_DEFLATED,
            "metadata/photos.json": zipfile.ZIP_DEFLATED,
            "photos.csv": zipfile.ZIP_DEFLATED,
            "raw.bin": zipfile.ZIP_STORED,
        }
        assert zf.getinfo("Zoë.jpg").date_time == (1980, 1, 1, 0, 0, 0)  # clamped to the zip epoch
        assert zf.read("metadata/photos.json") == b'{"a": 1}' * 100
        assert zf.read("Zoë.jpg.xmp") == b"<x:xmpmeta/>" * 100
    if shutil.which("unzip"):
        path = save(tmp_path, "t.zip", buffer.getvalue())
        subprocess.run(["unzip", "-tq", str(path)], check=True, capture_output=True)


@pytest.mark.parametrize("name", ["../evil.jpg", "/abs.jpg", "a/../../b.jpg", "a\\b.jpg", "", "a//b", "./a"])
def test_zip_refuses_unsafe_entry_names(name: str) -> None:
    with pytest.raises(Invalid):
        write_zip(io.BytesIO(), [ZipEntry(name, b"x")])


def test_write_zip_to_unseekable_stream() -> None:
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.parts: list[bytes] = []

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            self.parts.append(bytes(data))
            return len(data)

    pipe = Pipe()
    write_zip(pipe, [ZipEntry("a.jpg", b"abc"), ZipEntry("b.json", [b"{", b"}"])])  # type: ignore[arg-type]
    with zipfile.ZipFile(io.BytesIO(b"".join(pipe.parts))) as zf:
        assert zf.read("a.jpg") == b"abc" and zf.read("b.json") == b"{}"


def test_write_zip_to_a_path_is_atomic(tmp_path: Path) -> None:
    dest = tmp_path / "out.zip"
    write_zip(str(dest), [ZipEntry("a.jpg", b"abc")])
    assert sorted(os.listdir(tmp_path)) == ["out.zip"]

    def failing() -> Iterator[bytes]:
        yield b"x" * CHUNK
        raise OSError("the blob store went away")

    broken = tmp_path / "broken.zip"
    with pytest.raises(OSError, match="went away"):
        write_zip(broken, [ZipEntry("a.jpg", b"abc"), ZipEntry("b.jpg", failing())])
    assert sorted(os.listdir(tmp_path)) == ["out.zip"]  # nothing half-written left behind


def test_photoshop_iptc_digest_is_current_after_writing(exiftool: str, tmp_path: Path) -> None:
    # A real camera file whose Photoshop block carries an IPTCDigest of its IPTC record.
    source = EXIF_DIR / "exif_0033.jpg"
    before = subprocess.run(
        [exiftool, "-s3", "-IPTCDigest", str(source)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert before, "the test photo must carry an IPTCDigest"
    written = write_metadata(
        source.read_bytes(), "image/jpeg", PhotoMetadata(tags=[("dog", "object")], caption="Walk")
    )
    out = tmp_path / "out.jpg"
    out.write_bytes(written.data)
    validated = subprocess.run(
        [exiftool, "-validate", "-warning", "-a", str(out)], capture_output=True, text=True, check=True
    ).stdout
    assert "IPTCDigest" not in validated, validated
    tags = read_tags(exiftool, out, "-IPTC:Keywords", "-IPTCDigest", struct=False)
    assert "dog" in as_list(tags.get("Keywords"))
    assert tags["IPTCDigest"] != before
