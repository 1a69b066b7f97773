"""Domain errors. Services raise these; api/errors.py maps them to problem+json in one place."""

from typing import Any

# Problem types are URIs under this base, one per error kind (RFC 9457 `type`).
PROBLEM_BASE = "https://shoebox.dev/problems/"


class ShoeboxError(Exception):
    """Base of every error a client may see. `status` is the HTTP status it maps to."""

    status: int = 400
    title: str = "Bad request"
    type_slug: str = "bad-request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.type_slug

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 body without the request's own fields (instance, request id)."""
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


class Invalid(ShoeboxError):
    status = 422
    title = "Invalid request"
    type_slug = "invalid"


class Unauthorized(ShoeboxError):
    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class Forbidden(ShoeboxError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


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


class UploadRejected(ShoeboxError):
    """Every file of an upload was rejected; `errors` holds each file's own problem."""

    title = "Every file was rejected"
    type_slug = "upload-rejected"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]], status: int) -> None:
        super().__init__(detail, errors=errors)
        self.status = status


class Unavailable(ShoeboxError):
    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"


class ModelMissing(Unavailable):
    title = "Model not available"
    type_slug = "model-missing"
