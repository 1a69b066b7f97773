"""Opaque keyset cursors: base64url JSON of the last row's sort key and id."""

import base64
import json
from typing import Any

from core.errors import Invalid


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("cursor is malformed", errors=[{"field": "cursor", "message": "not a cursor"}]) from exc
    if not isinstance(values, list) or len(values) != length:
        raise Invalid("cursor does not belong to this listing", errors=[{"field": "cursor"}])
    return values
