"""Domain errors. Services raise these; api/errors.py maps them to problem+json in one place."""

from typing import Any


class ShoeboxError(Exception):
    """Base of every error a client may see. `status` is the HTTP status it maps to."""

    status: int = 400
    title: str = "Bad request"
    type_slug: str = "bad-request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class Invalid(ShoeboxError):
    status = 422
    title = "Invalid request"
    type_slug = "invalid"


class Unauthorized(ShoeboxError):
    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class NotFound(ShoeboxError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(ShoeboxError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class TooLarge(ShoeboxError):
    status = 413
    title = "Payload too large"
    type_slug = "too-large"


class UnsupportedMedia(ShoeboxError):
    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


class Unavailable(ShoeboxError):
    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"


class ModelMissing(Unavailable):
    title = "Model not available"
    type_slug = "model-missing"
