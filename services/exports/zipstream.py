"""Zip writing for exports, with bounded memory, and safe unique file names inside it.

`write_zip` writes entries one chunk at a time into a file (or any binary stream), never holding
more than one chunk of one entry (plus zlib's own window for compressed entries). Already-compressed media is
stored as is (ZIP_STORED: deflating a JPEG costs CPU and saves nothing); text formats are deflated.
ZIP64 is used where sizes need it, so exports beyond 4 GiB or 65535 entries work.
"""

from __future__ import annotations

import os
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from core.errors import Invalid

# Extensions whose content is already compressed: stored, not deflated.
STORED_EXTENSIONS = frozenset(
    {
        "jpg", "jpeg", "jpe", "heic", "heif", "avif", "png", "webp", "gif",
        "mp4", "mov", "m4v", "zip", "gz", "bz2", "xz", "zst", "7z", "mp3", "aac",
    }
)  # fmt: skip
DEFAULT_CHUNK = 1 << 20  # bytes per write when an entry's data is one bytes object
MAX_NAME_BYTES = 200  # below every common file system's 255, leaving room for " (n)"
FALLBACK_STEM = "photo"

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry

_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
    | {"com¹", "com²", "com³", "lpt¹", "lpt²", "lpt³"}
)  # fmt: skip
_FORBIDDEN_CHARS_RE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_EXTENSION_RE = re.compile(r"^[A-Za-z0-9]{1,10}$")


@dataclass(frozen=True, slots=True)
class ZipEntry:
    name: str  # path inside the archive, "/"-separated; no "..", no leading "/"
    data: bytes | Iterable[bytes]  # the content, whole or as chunks (a generator keeps memory flat)
    date_time: datetime | tuple[int, int, int, int, int, int] | None = None  # None: now (local)
    size: int | None = None  # the content size if known in advance (lets small entries skip ZIP64)
    compress: bool | None = None  # None: decide from the extension


def write_zip(dest: BinaryIO | str | os.PathLike[str], entries: Iterable[ZipEntry]) -> int:
    """Write `entries` as a zip archive into `dest` (a path or a binary stream); returns the count.

    A seekable stream gets a classic zip (sizes patched into each local header); an unseekable one
    gets data descriptors instead. The stream is flushed, not closed. A path is written atomically:
    into a hidden ".<name>.part" beside it, renamed on success and removed on any failure, so no
    half-written archive is ever left under the final name.
    """
    if isinstance(dest, str | os.PathLike):
        path = Path(dest)
        part = path.with_name(f".{path.name}.part")
        try:
            with part.open("wb") as fp:
                count = write_zip(fp, entries)
            os.replace(part, path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return count
    count = 0
    with zipfile.ZipFile(dest, mode="w", allowZip64=True) as zf:
        for entry in entries:
            _write_entry(zf, entry)
            count += 1
    dest.flush()
    return count


def _write_entry(zf: zipfile.ZipFile, entry: ZipEntry) -> None:
    """Write one entry chunk by chunk, so memory stays flat whatever its size."""
    name = _check_entry_name(entry.name)
    info = zipfile.ZipInfo(name, date_time=_zip_time(entry.date_time))
    compress = entry.compress if entry.compress is not None else _should_compress(name)
    if compress:
        info.compress_type = zipfile.ZIP_DEFLATED  # zlib's default level 6
    else:
        info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16  # a plain rw-r--r-- file once unzipped on Unix
    size = entry.size if entry.size is not None else _known_size(entry.data)
    if size is not None:
        info.file_size = size  # lets zipfile choose ZIP64 only when the size calls for it
    # Unknown size: reserve ZIP64 fields up front, or a >4 GiB entry would fail half-way.
    with zf.open(info, mode="w", force_zip64=size is None) as out:
        for chunk in _chunks(entry.data):
            out.write(chunk)


def _known_size(data: bytes | Iterable[bytes]) -> int | None:
    return len(data) if isinstance(data, bytes | bytearray | memoryview) else None


def _chunks(data: bytes | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), DEFAULT_CHUNK):
            yield bytes(view[start : start + DEFAULT_CHUNK])
        return
    for chunk in data:
        if chunk:
            yield chunk


def _should_compress(name: str) -> bool:
    suffix = PurePosixPath(name).suffix.lower().lstrip(".")
    return suffix not in STORED_EXTENSIONS


ZipTime = tuple[int, int, int, int, int, int]


def _zip_time(value: datetime | ZipTime | None) -> ZipTime:
    moment = datetime.now() if value is None else value
    stamp: ZipTime = (
        (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
        if isinstance(moment, datetime)
        else moment
    )
    # The DOS date field covers 1980..2107; clamp rather than fail on a scanner's 1970 clock.
    if stamp < ZIP_EPOCH:
        return ZIP_EPOCH
    if stamp[0] > 2107:
        return (2107, 12, 31, 23, 59, 58)
    return stamp


def _check_entry_name(name: str) -> str:
    """Entry names are built by the export itself; refuse anything that could escape the folder."""
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise Invalid(f"Unsafe zip entry name {name!r}.")
    return name


# -- names -----------------------------------------------------------------------------------------


def safe_unique_name(original_name: str, used: set[str], max_bytes: int = MAX_NAME_BYTES) -> str:
    """A file name safe on Windows, macOS and Linux, unique (ignoring case) among `used`.

    Directories and traversal are dropped ("../../etc/passwd" -> "passwd"), control characters
    and characters Windows forbids become "_", reserved device names (CON, NUL, COM1 ...) get a
    "_", the name is cut to `max_bytes` of UTF-8 keeping its extension, and an empty result becomes
    "photo". A clash gets " (2)", " (3)" ... before the extension. `used` holds the case-folded
    names already taken; the returned name's case-folded form is added to it.
    """
    stem, ext = _split_name(original_name)
    stem = _clean_stem(stem)
    candidate = _fit(stem, ext, "", max_bytes)
    n = 1
    while candidate.casefold() in used or candidate in used:
        n += 1
        candidate = _fit(stem, ext, f" ({n})", max_bytes)
    used.add(candidate.casefold())
    return candidate


def _split_name(original_name: str) -> tuple[str, str]:
    text = unicodedata.normalize("NFC", original_name or "")
    base = re.split(r"[/\\]", text)[-1]  # both separators: names come from any OS
    stem, dot, ext = base.rpartition(".")
    if dot and _EXTENSION_RE.match(ext):
        return stem, "." + ext
    return base, ""


def _clean_stem(stem: str) -> str:
    stem = _FORBIDDEN_CHARS_RE.sub("_", stem)
    stem = "".join(ch for ch in stem if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co"))
    # Leading dots hide files (and "." / ".." are no names); Windows drops trailing dots/spaces.
    stem = stem.strip(" .")
    if not stem:
        return FALLBACK_STEM
    head, dot, rest = stem.partition(".")
    if head.rstrip(" ").casefold() in _WINDOWS_RESERVED:
        stem = f"{head}_{dot}{rest}"  # "con.jpg" would open the console on Windows
    return stem


def _fit(stem: str, ext: str, suffix: str, max_bytes: int) -> str:
    budget = max_bytes - len((suffix + ext).encode("utf-8"))
    if budget < 1:
        raise ValueError("max_bytes leaves no room for a name")
    cut = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore").rstrip(" .")
    return (cut or FALLBACK_STEM[:budget]) + suffix + ext
