"""Upload file names are display text, never paths: normalised and cleaned before they are stored."""

import unicodedata
from pathlib import PurePosixPath

# Photo.filename is String(500).
MAX_FILENAME_LENGTH = 255
FALLBACK_FILENAME = "upload"
# Control, format (bidi overrides, zero-width), surrogate and unassigned code points.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn"})


def display_filename(sent: str) -> str:
    """The last path component of what the client sent, NFC-normalised, with control, format
    (bidi overrides, zero-width) and unassigned characters removed, `..` refused and the length capped.

    A name like "\\u202egpj.exe" would otherwise show as "exe.jpg" in a frontend, and a NUL does not
    fit in a PostgreSQL text column at all.
    """
    text = unicodedata.normalize("NFC", sent)
    text = "".join(
        (" " if ch.isspace() else "") if unicodedata.category(ch) in _DROPPED_CATEGORIES else ch
        for ch in text
    )
    name = PurePosixPath(text.replace("\\", "/")).name.strip()
    if name in ("", ".", ".."):
        return FALLBACK_FILENAME
    if len(name) > MAX_FILENAME_LENGTH:
        _, dot, suffix = name.rpartition(".")
        keep = suffix if dot and len(suffix) <= 10 else ""
        name = name[: MAX_FILENAME_LENGTH - len(keep) - 1].rstrip() + ("." + keep if keep else "")
    return name
