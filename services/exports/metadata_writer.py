"""Write tags, people, caption, face regions and orientation into a copy of a photo's bytes.

Pure functions, no database and no files: the export job hands in the original bytes and gets new
bytes back (plus, for formats that cannot carry XMP, a sidecar packet for `<name>.xmp`).

What is written, so that digiKam, Lightroom and exiftool all see it:
  * XMP dc:subject (Bag): every tag name and person name, flat.
  * XMP lr:hierarchicalSubject (Bag): `People|Alice`, `Objects|dog`, `Labels|espresso`,
    `Categories|food`, `Tags|<user tag>`, `Albums|<album name>`.
  * XMP xmp:Rating (0-5 stars, 0 = unrated), when the photo has a rating. Favourites get no keyword:
    neither digiKam nor Lightroom has a favourite field or keyword convention to follow.
  * XMP Iptc4xmpExt:PersonInImage (Bag): the people.
  * IPTC Keywords (each cut to the standard's 64 bytes) with CodedCharacterSet = UTF-8, where the
    format has IPTC (JPEG, PNG, TIFF; not WebP).
  * XMP dc:description (x-default) and IPTC Caption-Abstract for the caption; EXIF
    ImageDescription too, but only where the file already has one (so they never disagree).
  * XMP MWG face regions (mwg-rs:Regions), see "Face regions" below.
  * EXIF Orientation (and XMP tiff:Orientation where the file has one), when asked to.

Merging: whatever the file already says is kept. Keywords are compared case-insensitively (after
Unicode NFC), so writing twice, or writing over an earlier export, never duplicates anything; a
face region whose area overlaps an existing Face region (IoU >= 0.5) updates that region in place
(our name and area win); other existing regions are kept as they are.

Face regions and orientation (the contract):
  * `FaceRegion.box` is [x, y, w, h], normalised 0..1, top-left origin, relative to the photo
    *as displayed with the orientation this call leaves in the file* (`PhotoMetadata.orientation`
    when given, else the file's own EXIF orientation). That is the API's orientation-corrected box
    with the user's extra rotation applied: `rotate_box(face.bbox, photo.rotation)`.
  * MWG Guidelines 2.0 (section 5.9, Image Region Metadata) say region metadata applies to the
    *stored* image: a viewer applies the Exif Orientation to the pixels and to the regions alike.
    So mwg-rs:AppliedToDimensions is the stored (unrotated) pixel size and each mwg-rs:Area
    (x, y = centre of the box; w, h; unit normalized) is in stored-pixel coordinates. exiftool's
    rotate_regions.config and Immich (PR 18021) read them that way, and digiKam writes them that
    way (viewers that skipped the rotation misplaced digiKam's faces on portrait photos, e.g.
    pigallery2 issues 515/979). The box is mapped from displayed to stored with the inverse of the
    orientation written, so changing only the orientation keeps the regions on the faces.
  * HEIF/AVIF: decoders apply the container's irot/imir and pillow-heif resets the EXIF tag, so the
    decoded image is taken as the stored one, with orientation 1 (as services/images.py does).

Formats: JPEG, PNG, WebP and TIFF get the metadata embedded (exiv2 writes them). GIF and
HEIC/HEIF/AVIF cannot be written by exiv2 (GIF has no metadata support, BMFF is read-only), so
their bytes are returned untouched with a standalone XMP sidecar carrying the same XMP fields
(orientation as tiff:Orientation) merged with whatever XMP the file already had. A file exiv2
cannot parse at all is treated the same way rather than failing the export.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pillow_heif
import pyexiv2
from PIL import Image

from core.errors import Invalid
from services.inference.tensors import box_iou

log = logging.getLogger(__name__)

# pyexiv2 turns every exiv2 log line at or above its level into a RuntimeError, and exiv2 logs
# recoverable trouble (an unreadable maker note, say) as errors: only mute lets such photos through.
# Real failures still raise (as Exiv2 exceptions). Process-wide setting, harmless for other users.
pyexiv2.set_log_level(4)

# pyexiv2 keeps its error log in a global buffer; one writer at a time keeps errors with their call.
_EXIV2_LOCK = threading.Lock()

# Image.open must know HEIC/HEIF for their pixel size; registering twice (images.py does) is harmless.
pillow_heif.register_heif_opener()

Box = tuple[float, float, float, float]

HIERARCHY_ROOTS: dict[str, str] = {
    "object": "Objects",
    "label": "Labels",
    "category": "Categories",
    "user": "Tags",
}
PEOPLE_ROOT = "People"
ALBUMS_ROOT = "Albums"

EMBEDDED_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/tiff"})
# Decoders already apply HEIF transforms (irot/imir); their decoded image counts as the stored one.
HEIF_TYPES = frozenset(
    {"image/heic", "image/heif", "image/avif", "image/heic-sequence", "image/heif-sequence"}
)

IPTC_KEYWORD_MAX_BYTES = 64  # IPTC IIM 2:25
IPTC_CAPTION_MAX_BYTES = 2000  # IPTC IIM 2:120
IPTC_UTF8 = "\x1b%G"  # ISO 2022 escape sequence for UTF-8, in IPTC 1:90 CodedCharacterSet
REGION_MATCH_IOU = 0.5

_REGIONS = "Xmp.mwg-rs.Regions"
_REGION_LIST = f"{_REGIONS}/mwg-rs:RegionList"
_APPLIED_TO = f"{_REGIONS}/mwg-rs:AppliedToDimensions"
_REGION_ITEM_RE = re.compile(re.escape(_REGION_LIST) + r"\[(\d+)\](?:/(.*))?$")

# -- orientation algebra ---------------------------------------------------------------------------
# Each EXIF orientation as the 2x2 matrix taking a stored point to its displayed place, in centred
# normalised coordinates (x right, y down, both in -1..1). Orientation 6 = "rotate 90 CW to view".
_Matrix = tuple[tuple[int, int], tuple[int, int]]
_ORIENTATION_MATRIX: dict[int, _Matrix] = {
    1: ((1, 0), (0, 1)),
    2: ((-1, 0), (0, 1)),  # mirror horizontal
    3: ((-1, 0), (0, -1)),  # rotate 180
    4: ((1, 0), (0, -1)),  # mirror vertical
    5: ((0, 1), (1, 0)),  # transpose: mirror horizontal + rotate 270 CW
    6: ((0, -1), (1, 0)),  # rotate 90 CW
    7: ((0, -1), (-1, 0)),  # transverse: mirror horizontal + rotate 90 CW
    8: ((0, 1), (-1, 0)),  # rotate 270 CW
}
_MATRIX_ORIENTATION: dict[_Matrix, int] = {m: o for o, m in _ORIENTATION_MATRIX.items()}
_ROTATE_CW_90 = _ORIENTATION_MATRIX[6]


def _matmul(a: _Matrix, b: _Matrix) -> _Matrix:
    return (
        (a[0][0] * b[0][0] + a[0][1] * b[1][0], a[0][0] * b[0][1] + a[0][1] * b[1][1]),
        (a[1][0] * b[0][0] + a[1][1] * b[1][0], a[1][0] * b[0][1] + a[1][1] * b[1][1]),
    )


def _transpose(m: _Matrix) -> _Matrix:
    return ((m[0][0], m[1][0]), (m[0][1], m[1][1]))


def _check_orientation(orientation: int) -> int:
    if (
        isinstance(orientation, bool)
        or not isinstance(orientation, int)
        or orientation not in _ORIENTATION_MATRIX
    ):
        raise Invalid(f"EXIF orientation must be an integer 1..8, not {orientation!r}.")
    return orientation


def _quarter_turns(rotation_cw: int) -> int:
    if isinstance(rotation_cw, bool) or not isinstance(rotation_cw, int) or rotation_cw % 90 != 0:
        raise Invalid(f"Rotation must be 0, 90, 180 or 270 degrees, not {rotation_cw!r}.")
    return (rotation_cw // 90) % 4


def _rotation_matrix(rotation_cw: int) -> _Matrix:
    m: _Matrix = _ORIENTATION_MATRIX[1]
    for _ in range(_quarter_turns(rotation_cw)):
        m = _matmul(_ROTATE_CW_90, m)
    return m


def compose_orientation(exif_orientation: int, user_rotation_cw: int) -> int:
    """The EXIF orientation that shows the stored pixels as `exif_orientation` does, then turned
    clockwise by `user_rotation_cw` degrees (a multiple of 90; negative means counter-clockwise)."""
    m = _matmul(_rotation_matrix(user_rotation_cw), _ORIENTATION_MATRIX[_check_orientation(exif_orientation)])
    return _MATRIX_ORIENTATION[m]


def _map_box(box: Box, m: _Matrix) -> Box:
    """Image `box` [x, y, w, h] (normalised, top-left) under the centred transform `m`."""
    x, y, w, h = box
    corners = [(2 * px - 1, 2 * py - 1) for px, py in ((x, y), (x + w, y + h))]
    mapped = [(m[0][0] * cx + m[0][1] * cy, m[1][0] * cx + m[1][1] * cy) for cx, cy in corners]
    xs = [(mx + 1) / 2 for mx, _ in mapped]
    ys = [(my + 1) / 2 for _, my in mapped]
    return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def rotate_box(box: Sequence[float], rotation_cw: int) -> Box:
    """A displayed box after the picture is turned clockwise by `rotation_cw` degrees."""
    return _map_box(_clamp_box(box), _rotation_matrix(rotation_cw))


def display_box_to_stored(box: Sequence[float], orientation: int) -> Box:
    """A box on the picture as displayed with EXIF `orientation`, in stored-pixel coordinates."""
    # Orientation matrices are orthogonal: the inverse is the transpose.
    return _map_box(_clamp_box(box), _transpose(_ORIENTATION_MATRIX[_check_orientation(orientation)]))


def _clamp_box(box: Sequence[float]) -> Box:
    if len(box) != 4:
        raise Invalid(f"A box is [x, y, w, h], not {list(box)!r}.")
    x, y, w, h = (float(v) for v in box)
    x0, y0 = min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)
    x1, y1 = min(max(x + max(w, 0.0), 0.0), 1.0), min(max(y + max(h, 0.0), 0.0), 1.0)
    return (x0, y0, x1 - x0, y1 - y0)


# -- input / output --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaceRegion:
    name: str | None  # None writes an unnamed Face region
    # [x, y, w, h] normalised 0..1, top-left origin, on the photo as displayed with the orientation
    # the written file ends up with (see the module docstring).
    box: Sequence[float]


@dataclass(frozen=True, slots=True)
class PhotoMetadata:
    # (name, kind) pairs, kind in object|label|category|user; only what should be written
    # (the caller leaves out rejected suggestions).
    tags: Sequence[tuple[str, str]] = ()
    people: Sequence[str] = ()  # names of the people in the photo; region names are added too
    caption: str | None = None  # None or blank leaves the file's caption as it is
    faces: Sequence[FaceRegion] = ()
    # Final EXIF orientation to write (1..8), e.g. compose_orientation(file_orientation, rotation);
    # None keeps the file's own.
    orientation: int | None = None
    # 1..5 stars written as xmp:Rating; None or 0 (unrated) leaves the file's rating as it is.
    rating: int | None = None
    albums: Sequence[str] = ()  # album names, written as `Albums|<name>`


@dataclass(frozen=True, slots=True)
class WrittenFile:
    data: bytes  # the photo with its metadata (the original bytes when a sidecar carries it)
    sidecar_xmp: bytes | None = field(default=None)  # put beside the photo as `<name>.xmp`

    @property
    def embedded(self) -> bool:
        return self.sidecar_xmp is None


# -- entry point -----------------------------------------------------------------------------------


def write_metadata(data: bytes, content_type: str, meta: PhotoMetadata) -> WrittenFile:
    """A copy of `data` with `meta` merged into its metadata, or the untouched bytes plus a sidecar."""
    if meta.orientation is not None:
        _check_orientation(meta.orientation)
    plan = _Plan.from_meta(meta)
    media_type = content_type.split(";", 1)[0].strip().lower()
    with _EXIV2_LOCK:
        if media_type in EMBEDDED_TYPES:
            try:
                return WrittenFile(_embed(data, media_type, meta, plan))
            except RuntimeError as exc:
                # exiv2 could not parse or rewrite this file; the sidecar still carries everything.
                log.warning("Cannot embed metadata in this %s file, writing a sidecar: %s", media_type, exc)
        return WrittenFile(data, _sidecar(data, media_type, meta, plan))


# -- planning (format independent) -------------------------------------------------------------------


def _clean(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", str(text)).split())


def _key(text: str) -> str:
    return _clean(text).casefold()


def _merge(*groups: Iterable[str]) -> list[str]:
    """Union in first-seen order; equal ignoring case and Unicode form counts once (first spelling wins)."""
    seen: set[str] = set()
    out: list[str] = []
    for group in groups:
        for item in group:
            text = _clean(item)
            if text and _key(text) not in seen:
                seen.add(_key(text))
                out.append(text)
    return out


def _truncate_utf8(text: str, max_bytes: int) -> str:
    # Cut on a character boundary: a half UTF-8 sequence would make the whole record unreadable.
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore").rstrip()


@dataclass(frozen=True, slots=True)
class _Plan:
    keywords: list[str]  # flat: tags then people
    hierarchical: list[str]
    people: list[str]
    caption: str | None

    @classmethod
    def from_meta(cls, meta: PhotoMetadata) -> _Plan:
        tag_names: list[str] = []
        hierarchical: list[str] = []
        for name, kind in meta.tags:
            root = HIERARCHY_ROOTS.get(kind)
            if root is None:
                raise Invalid(f"Unknown tag kind {kind!r}; expected one of {sorted(HIERARCHY_ROOTS)}.")
            if not _clean(name):
                continue
            tag_names.append(name)
            # '|' separates levels in lr:hierarchicalSubject; inside a name it would invent one.
            hierarchical.append(f"{root}|{_clean(name).replace('|', '/')}")
        people = _merge(meta.people, (f.name for f in meta.faces if f.name))
        hierarchical += [f"{PEOPLE_ROOT}|{p.replace('|', '/')}" for p in people]
        hierarchical += [f"{ALBUMS_ROOT}|{_clean(a).replace('|', '/')}" for a in meta.albums if _clean(a)]
        caption = _clean_caption(meta.caption)
        return cls(_merge(tag_names, people), _merge(hierarchical), people, caption)


def _clean_caption(caption: str | None) -> str | None:
    if caption is None:
        return None
    text = unicodedata.normalize("NFC", caption).strip()
    return text or None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _bag(xmp: dict[str, Any], key: str, items: list[str]) -> dict[str, Any]:
    """Changes that make `key` an rdf:Bag holding exactly `items`.

    pyexiv2's list form always writes an rdf:Seq; exiv2 reads "type=Bag" as an empty Bag instead,
    and indexed keys then fill it.
    """
    changes: dict[str, Any] = {key: "type=Bag"}  # the container first: exiv2 applies changes in order
    for i, item in enumerate(items, start=1):
        changes[f"{key}[{i}]"] = item
    changes.update({k: None for k in xmp if k.startswith(f"{key}[") and k not in changes})
    return changes


def _xmp_changes(
    xmp: dict[str, Any],
    plan: _Plan,
    meta: PhotoMetadata,
    iptc_keywords: list[str],
    stored_size: tuple[int, int] | None,
    orientation: int,
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    old_subject = _as_list(xmp.get("Xmp.dc.subject"))
    # IPTC keywords join the XMP ones (MWG: keep the two in step), except the 64-byte cuts of
    # longer XMP keywords, which an earlier write made and which are not keywords of their own.
    cut = {_key(_truncate_utf8(k, IPTC_KEYWORD_MAX_BYTES)) for k in [*old_subject, *plan.keywords]}
    iptc_only = [k for k in iptc_keywords if _key(k) not in cut]
    subject = _merge(old_subject, iptc_only, plan.keywords)
    if subject:
        changes.update(_bag(xmp, "Xmp.dc.subject", subject))
    hierarchical = _merge(_as_list(xmp.get("Xmp.lr.hierarchicalSubject")), plan.hierarchical)
    if hierarchical:
        changes.update(_bag(xmp, "Xmp.lr.hierarchicalSubject", hierarchical))
    if plan.people:
        people = _merge(_as_list(xmp.get("Xmp.iptcExt.PersonInImage")), plan.people)
        changes.update(_bag(xmp, "Xmp.iptcExt.PersonInImage", people))
    if plan.caption is not None:
        old = xmp.get("Xmp.dc.description")
        langs = dict(old) if isinstance(old, dict) else {}
        langs['lang="x-default"'] = plan.caption  # other languages stay
        changes["Xmp.dc.description"] = langs
    if meta.rating:
        changes["Xmp.xmp.Rating"] = str(meta.rating)
    if meta.faces:
        changes.update(_region_changes(xmp, meta.faces, stored_size, orientation))
    return changes


# -- MWG regions -----------------------------------------------------------------------------------


def _existing_regions(xmp: dict[str, Any]) -> dict[int, dict[str, str]]:
    """Existing RegionList items by 1-based index: their sub-fields ("mwg-rs:Name", ...)."""
    regions: dict[int, dict[str, str]] = {}
    for key, value in xmp.items():
        match = _REGION_ITEM_RE.match(key)
        if match:
            fields = regions.setdefault(int(match.group(1)), {})
            if match.group(2):
                fields[match.group(2)] = value if isinstance(value, str) else ""
    return regions


def _existing_face_box(fields: dict[str, str]) -> Box | None:
    if fields.get("mwg-rs:Type", "Face") != "Face":
        return None
    if fields.get("mwg-rs:Area/stArea:unit", "normalized") != "normalized":
        return None
    try:
        cx, cy, w, h = (float(fields[f"mwg-rs:Area/stArea:{c}"]) for c in "xywh")
    except (KeyError, ValueError):
        return None
    return (cx - w / 2, cy - h / 2, w, h)


def _region_changes(
    xmp: dict[str, Any], faces: Sequence[FaceRegion], stored_size: tuple[int, int] | None, orientation: int
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if _REGIONS not in xmp:
        changes[_REGIONS] = "type=Struct"
    if stored_size is not None:
        if _APPLIED_TO not in xmp:
            changes[_APPLIED_TO] = "type=Struct"
        changes[f"{_APPLIED_TO}/stDim:w"] = str(stored_size[0])
        changes[f"{_APPLIED_TO}/stDim:h"] = str(stored_size[1])
        changes[f"{_APPLIED_TO}/stDim:unit"] = "pixel"
    if _REGION_LIST not in xmp:
        changes[_REGION_LIST] = "type=Bag"

    existing = _existing_regions(xmp)
    candidates = {i: box for i, fields in existing.items() if (box := _existing_face_box(fields))}
    next_index = max(existing, default=0) + 1
    for face in faces:
        box = display_box_to_stored(face.box, orientation)
        best = max(candidates, key=lambda i: box_iou(candidates[i], box), default=None)
        if best is not None and box_iou(candidates[best], box) >= REGION_MATCH_IOU:
            index = best  # the same face, written before (by us or another program): update it
            del candidates[best]
            fields = existing[index]
        else:
            index, next_index = next_index, next_index + 1
            fields = {}
        item = f"{_REGION_LIST}[{index}]"
        if index not in existing:
            changes[item] = "type=Struct"
        if face.name:
            changes[f"{item}/mwg-rs:Name"] = _clean(face.name)
        changes[f"{item}/mwg-rs:Type"] = "Face"
        if "mwg-rs:Area" not in fields:
            changes[f"{item}/mwg-rs:Area"] = "type=Struct"
        x, y, w, h = box
        changes[f"{item}/mwg-rs:Area/stArea:x"] = _num(x + w / 2)  # MWG: x, y are the centre
        changes[f"{item}/mwg-rs:Area/stArea:y"] = _num(y + h / 2)
        changes[f"{item}/mwg-rs:Area/stArea:w"] = _num(w)
        changes[f"{item}/mwg-rs:Area/stArea:h"] = _num(h)
        changes[f"{item}/mwg-rs:Area/stArea:unit"] = "normalized"
    return changes


# -- embedding -------------------------------------------------------------------------------------


def _read_iptc(image: pyexiv2.ImageData) -> tuple[dict[str, Any], bool]:
    """IPTC datasets, and whether they must be re-encoded as UTF-8 (legacy 8-bit text)."""
    try:
        return image.read_iptc(), False
    except UnicodeDecodeError:
        # Written without a UTF-8 CodedCharacterSet (Latin-1, most likely): decode as Latin-1 so
        # nothing is lost, then write the text back as UTF-8 along with our changes.
        return image.read_iptc(encoding="latin-1"), True


def _file_orientation(exif: dict[str, Any]) -> int:
    try:
        value = int(str(exif.get("Exif.Image.Orientation", "1")).split()[0])
    except (ValueError, IndexError):
        return 1
    return value if value in _ORIENTATION_MATRIX else 1


def _stored_size(image: pyexiv2.ImageData, data: bytes, media_type: str) -> tuple[int, int] | None:
    if media_type not in HEIF_TYPES:
        width, height = image.get_pixel_width(), image.get_pixel_height()
        if width > 0 and height > 0:
            return width, height
    return _pillow_size(data)


def _pillow_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:
        return None


def _embed(data: bytes, media_type: str, meta: PhotoMetadata, plan: _Plan) -> bytes:
    image = pyexiv2.ImageData(data)  # copies the bytes: `data` itself is never touched
    try:
        modes = image.get_access_mode()
        if modes.get("xmp") != "read+write":
            raise RuntimeError(f"exiv2 cannot write XMP into {image.get_mime_type()}")
        # Latin-1 never fails to decode; only the orientation and presence of tags are read here.
        exif = image.read_exif(encoding="latin-1")
        xmp = image.read_xmp()
        can_iptc = modes.get("iptc") == "read+write"
        iptc, legacy_iptc = _read_iptc(image) if can_iptc else ({}, False)
        iptc_keywords = _as_list(iptc.get("Iptc.Application2.Keywords"))

        orientation = meta.orientation if meta.orientation is not None else _file_orientation(exif)
        size = _stored_size(image, data, media_type)
        xmp_changes = _xmp_changes(xmp, plan, meta, iptc_keywords, size, orientation)
        if meta.orientation is not None and "Xmp.tiff.Orientation" in xmp:
            xmp_changes["Xmp.tiff.Orientation"] = str(meta.orientation)  # never two answers

        iptc_changes = _iptc_changes(iptc, legacy_iptc, plan, xmp_changes) if can_iptc else {}
        exif_changes = _exif_changes(exif, meta, plan) if modes.get("exif") == "read+write" else {}

        if xmp_changes:
            image.modify_xmp(xmp_changes)
        if iptc_changes:
            image.modify_iptc(iptc_changes)
        if exif_changes:
            image.modify_exif(exif_changes)
        written = bytes(image.get_bytes())
    finally:
        image.close()
    if iptc_changes and media_type == "image/jpeg":
        written = refresh_iptc_digest(written)
    reread = pyexiv2.ImageData(written)
    try:
        _verify_xmp(reread.read_xmp(), xmp_changes)
    finally:
        reread.close()
    return written


_PHOTOSHOP_SIGNATURE = b"Photoshop 3.0\x00"
_IRB_IPTC = 0x0404
_IRB_IPTC_DIGEST = 0x0425


def _photoshop_resources(segment: bytes, start: int) -> dict[int, tuple[int, int]]:
    """(offset, length) of each 8BIM resource's data in a JPEG APP13 segment, from `start`."""
    found: dict[int, tuple[int, int]] = {}
    at = start
    while at + 12 <= len(segment) and segment[at : at + 4] == b"8BIM":
        resource_id = int.from_bytes(segment[at + 4 : at + 6], "big")
        name_length = segment[at + 6]
        at += 6 + 1 + name_length + ((1 + name_length) % 2)  # Pascal name padded to an even size
        size = int.from_bytes(segment[at : at + 4], "big")
        at += 4
        found[resource_id] = (at, size)
        at += size + size % 2
    return found


def refresh_iptc_digest(data: bytes) -> bytes:
    """A JPEG whose Photoshop IPTCDigest matches its IPTC block again.

    exiv2 rewrites the IPTC record inside the Photoshop APP13 segment but leaves the digest Photoshop
    stored beside it, so readers (exiftool -validate, Photoshop, Lightroom) would take the IPTC as edited
    behind their back. The digest is an MD5 of the IPTC block; it has a fixed size, so it is patched in
    place and no segment moves.
    """
    if not data.startswith(b"\xff\xd8"):
        return data
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after this
            break
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        segment_start, segment_end = at + 4, at + 2 + length
        if (
            marker == 0xED
            and data[segment_start : segment_start + len(_PHOTOSHOP_SIGNATURE)] == _PHOTOSHOP_SIGNATURE
        ):
            segment = data[segment_start:segment_end]
            resources = _photoshop_resources(segment, len(_PHOTOSHOP_SIGNATURE))
            if _IRB_IPTC_DIGEST in resources and _IRB_IPTC in resources:
                digest_at, digest_size = resources[_IRB_IPTC_DIGEST]
                iptc_at, iptc_size = resources[_IRB_IPTC]
                if digest_size == 16:
                    digest = hashlib.md5(
                        segment[iptc_at : iptc_at + iptc_size], usedforsecurity=False
                    ).digest()
                    offset = segment_start + digest_at
                    return data[:offset] + digest + data[offset + 16 :]
            return data
        at = segment_end
    return data


def _iptc_changes(
    iptc: dict[str, Any], legacy: bool, plan: _Plan, xmp_changes: dict[str, Any]
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if legacy:
        changes.update({k: v for k, v in iptc.items() if k.startswith("Iptc.Application2.")})
    if not (plan.keywords or plan.caption or legacy):
        return changes
    # The same keyword list as dc:subject (which already holds the file's IPTC keywords).
    subject = [v for k, v in xmp_changes.items() if k.startswith("Xmp.dc.subject[") and v is not None]
    keywords = _merge(_truncate_utf8(k, IPTC_KEYWORD_MAX_BYTES) for k in subject)
    if keywords:
        changes["Iptc.Application2.Keywords"] = keywords
    if plan.caption is not None:
        changes["Iptc.Application2.Caption"] = _truncate_utf8(plan.caption, IPTC_CAPTION_MAX_BYTES)
    if changes:
        changes = {"Iptc.Envelope.CharacterSet": IPTC_UTF8, **changes}
    return changes


def _exif_changes(exif: dict[str, Any], meta: PhotoMetadata, plan: _Plan) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if meta.orientation is not None:
        current = exif.get("Exif.Image.Orientation")
        if current is not None or meta.orientation != 1:
            changes["Exif.Image.Orientation"] = str(meta.orientation)
    if plan.caption is not None and "Exif.Image.ImageDescription" in exif:
        changes["Exif.Image.ImageDescription"] = plan.caption
    return changes


# -- sidecar ---------------------------------------------------------------------------------------


def _sidecar(data: bytes, media_type: str, meta: PhotoMetadata, plan: _Plan) -> bytes:
    seed, iptc_keywords, orientation, size = "", [], 1, None
    try:
        source = pyexiv2.ImageData(data)
    except RuntimeError:
        source = None  # exiv2 does not know the file; start from an empty packet
    if source is not None:
        try:
            seed = source.read_raw_xmp().strip()
            if source.get_access_mode().get("iptc"):
                iptc_keywords = _as_list(_read_iptc(source)[0].get("Iptc.Application2.Keywords"))
            if media_type not in HEIF_TYPES:
                orientation = _file_orientation(source.read_exif(encoding="latin-1"))
            size = _stored_size(source, data, media_type)
        except (RuntimeError, UnicodeDecodeError) as exc:
            log.warning("Cannot read the existing metadata of this %s file: %s", media_type, exc)
        finally:
            source.close()
    if size is None:
        size = _pillow_size(data)
    if meta.orientation is not None:
        orientation = meta.orientation
    try:
        return _write_packet(seed, plan, meta, iptc_keywords, size, orientation)
    except RuntimeError as exc:
        if not seed:
            raise
        log.warning("The file's own XMP cannot be merged, writing a fresh sidecar: %s", exc)
        return _write_packet("", plan, meta, iptc_keywords, size, orientation)


@functools.cache
def _carrier_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    return buffer.getvalue()


def _write_packet(
    seed: str,
    plan: _Plan,
    meta: PhotoMetadata,
    iptc_keywords: list[str],
    size: tuple[int, int] | None,
    orientation: int,
) -> bytes:
    """A standalone XMP packet: `seed` (the file's own XMP, may be empty) with our changes merged.

    The packet is built inside a 1x1 PNG rather than in exiv2's XMP-sidecar image type: that one
    reorders array items behind their container on write, and the XMP toolkit then drops them.
    PNG keeps XMP in an iTXt chunk, so there is no 64 KiB cap either.
    """
    carrier = pyexiv2.ImageData(_carrier_png())
    try:
        if seed:
            carrier.modify_raw_xmp(seed)
        changes = _xmp_changes(carrier.read_xmp(), plan, meta, iptc_keywords, size, orientation)
        if meta.orientation is not None:
            changes["Xmp.tiff.Orientation"] = str(meta.orientation)
        if changes:
            carrier.modify_xmp(changes)
        written = carrier.get_bytes()
    finally:
        carrier.close()
    reread = pyexiv2.ImageData(written)
    try:
        _verify_xmp(reread.read_xmp(), changes)
        packet = reread.read_raw_xmp()
    finally:
        reread.close()
    # Padding is for editing in place inside an image; a sidecar has no use for it.
    packet = re.sub(r"\s+(<\?xpacket end=)", r"\n\1", packet.strip())
    return packet.encode("utf-8")


def _verify_xmp(written: dict[str, Any], changes: dict[str, Any]) -> None:
    """Check the XMP read back from the written bytes says what we asked for.

    exiv2's XMP encoder reports failures only through the (muted) log and then writes the old
    packet, so a silent no-op is possible; this turns it into an error (and a sidecar).
    """
    for key, value in changes.items():
        if value is None:
            continue
        if value == "type=Bag":
            item_re = re.compile(re.escape(key) + r"\[\d+\]")
            expected: Any = [v for k, v in changes.items() if v is not None and item_re.fullmatch(k)]
            if any(v.startswith("type=") for v in expected):
                continue  # a Bag of structs (regions): their fields are checked one by one
            actual: Any = _as_list(written.get(key))
        elif isinstance(value, str) and value.startswith("type="):
            continue  # a struct container: its fields are checked one by one
        elif key.endswith("]") and changes.get(key.rsplit("[", 1)[0]) == "type=Bag":
            continue  # a Bag item, checked with its Bag
        else:
            expected, actual = value, written.get(key)
        if actual != expected:
            raise RuntimeError(f"exiv2 did not write {key} (wanted {expected!r}, file has {actual!r})")
