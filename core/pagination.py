"""Opaque keyset cursors: base64url JSON of the last row's sort key and id.

A cursor comes back from the client, so it is untrusted input: decoding checks every value against
the kind the listing expects (a forged `[..., 5]` where an id belongs, a NaN, a 400-digit number, a
naive time for a UTC column) and answers 422 instead of letting the database or the driver fail.
"""

import base64
import binascii
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from core.errors import Invalid

# Kinds a cursor value can have; datetimes travel as ISO text and come back aware (naive = UTC).
CursorKind = type[str] | type[int] | type[float] | type[datetime]
_MAX_TEXT = 800  # the longest key a listing sorts by (people.name_key)
_MAX_NUMBER = 1e15


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: Sequence[CursorKind]) -> list[Any]:
    """The cursor's values, each checked and converted to its kind; Invalid (422) otherwise."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error, RecursionError) as exc:
        raise _invalid("not a cursor") from exc
    if not isinstance(values, list) or len(values) != len(kinds):
        raise _invalid("the cursor does not belong to this listing")
    return [_checked(value, kind) for value, kind in zip(values, kinds, strict=True)]


def _checked(value: Any, kind: CursorKind) -> Any:
    if kind is str:
        if isinstance(value, str) and len(value) <= _MAX_TEXT and "\x00" not in value:
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**31:
            return value
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value) if abs(value) <= _MAX_NUMBER else math.inf
            if math.isfinite(number):
                return number
    elif kind is datetime and isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    raise _invalid("the cursor does not belong to this listing")


def _invalid(message: str) -> Invalid:
    return Invalid(f"cursor is malformed: {message}", errors=[{"field": "cursor", "message": message}])
