"""The OpenAPI document, shaped so that SDK generators take it as it is.

FastAPI writes OpenAPI 3.1 and a few forms that generators (openapi-python-client, openapi-generator)
read badly or skip: uploads as `contentMediaType` rather than `format: binary`, and every error as
`application/json`. The routes declare what they answer; this module rewrites those forms once, for the
whole document, so no route has to repeat them.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_MEDIA_TYPE = "application/problem+json"
BINARY_SCHEMA: dict[str, str] = {"type": "string", "format": "binary"}
# FastAPI's own validation-error shapes; every 422 here answers a Problem instead.
_UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError")

TAGS: list[dict[str, str]] = [
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics (no authentication)."},
    {"name": "session", "description": "An HttpOnly session cookie for the same-origin web app."},
    {"name": "events", "description": "Server-sent events: job progress and analysed photos."},
    {"name": "photos", "description": "Upload, list, read, edit and delete photos; their image bytes."},
    {"name": "tags", "description": "User tags, confirming or rejecting model tags, vocabulary, review."},
    {"name": "faces", "description": "Faces found in photos, naming them, clusters of unnamed faces."},
    {"name": "people", "description": "People: create, rename, merge, delete, and their photos."},
    {"name": "search", "description": "Search by words, by example image, similar photos, duplicates."},
    {"name": "exports", "description": "Zips of photos with tags, people and face regions in metadata."},
    {"name": "jobs", "description": "Long-running work (analysis, recognition, verification)."},
]


def binary_content(*media_types: str) -> dict[str, dict[str, Any]]:
    """`content` of a response whose body is raw bytes of one of these types."""
    return {media_type: {"schema": dict(BINARY_SCHEMA)} for media_type in media_types}


def _binary_uploads(node: Any) -> None:
    """`{"type": "string", "contentMediaType": ...}` (3.1 style) -> `format: binary` (3.0 style), which
    generators turn into a file parameter."""
    if isinstance(node, dict):
        if node.get("type") == "string" and "contentMediaType" in node:
            del node["contentMediaType"]
            node["format"] = "binary"
        for value in node.values():
            _binary_uploads(value)
    elif isinstance(node, list):
        for value in node:
            _binary_uploads(value)


def _problem_media_type(document: dict[str, Any]) -> None:
    """Error responses are `application/problem+json` (RFC 9457), as the service sends them."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                if status[0] in "45" and schema.get("$ref") == "#/components/schemas/Problem":
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")


def shape_document(document: dict[str, Any]) -> dict[str, Any]:
    _binary_uploads(document)
    _problem_media_type(document)
    schemas = document.get("components", {}).get("schemas", {})
    for name in _UNUSED_SCHEMAS:
        schemas.pop(name, None)
    return document


def install_openapi(app: FastAPI) -> None:
    """Replace `app.openapi` with one that builds the shaped document once and caches it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=TAGS,
                servers=app.servers,
            )
            app.openapi_schema = shape_document(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
