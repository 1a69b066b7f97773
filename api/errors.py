"""The one place where errors become application/problem+json (RFC 9457)."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.http import allowed_methods
from core.errors import PROBLEM_BASE, ShoeboxError
from db.session import is_statement_timeout
from schemas.common import Problem

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_body(
    *,
    status: int,
    title: str,
    detail: str,
    slug: str,
    errors: list[dict[str, Any]] | None = None,
    request: Request | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if request is not None:
        body["instance"] = request.url.path
        body["request_id"] = getattr(request.state, "request_id", None)
    if errors:
        body["errors"] = errors
    return body


def problem_from_error(error: ShoeboxError, request: Request | None = None) -> dict[str, Any]:
    body = error.problem()
    if request is not None:
        body["instance"] = request.url.path
        body["request_id"] = getattr(request.state, "request_id", None)
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problem_responses(extra: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a router: the 401 and 422 every route can answer, plus its own."""
    described = {401: "missing or wrong API key", 422: "invalid request", **(extra or {})}
    return {status: {"model": Problem, "description": text} for status, text in sorted(described.items())}


_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    408: ("timeout", "Request timeout"),
    413: ("too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def _given(value: object) -> str:
    """The offending value, when it is short enough to quote back."""
    if isinstance(value, str | int | float | bool) and len(str(value)) <= 40:
        return f" (got {value!r})"
    return ""


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ShoeboxError)
    async def domain_error(request: Request, error: ShoeboxError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return problem_response(problem_from_error(error, request), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(
                    str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path")
                ),
                "location": item.get("loc", ("",))[0],
                "message": item.get("msg", "") + _given(item.get("input")),
            }
            for item in error.errors()
        ]
        detail = "; ".join(f"{e['field'] or e['location']}: {e['message']}" for e in errors)
        if any(item.get("type") == "json_invalid" for item in error.errors()):
            # Not JSON at all is a malformed request (400), not a well-formed one with wrong values (422).
            body = problem_body(
                status=400,
                title="Bad request",
                detail=f"the body is not valid JSON: {detail}",
                slug="bad-json",
                errors=errors,
                request=request,
            )
            return problem_response(body)
        body = problem_body(
            status=422,
            title="Invalid request",
            detail=f"the request is not valid: {detail}",
            slug="invalid",
            errors=errors,
            request=request,
        )
        return problem_response(body)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        slug, title = _HTTP_SLUGS.get(error.status_code, ("http-error", "HTTP error"))
        detail = error.detail if isinstance(error.detail, str) else title
        if error.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.method} {request.url.path}"
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:
            # Starlette names only the methods of the first route that matched the path.
            methods = allowed_methods(request.app, request.scope)
            headers["Allow"] = ", ".join(methods)
            detail = f"{request.method} is not allowed here; allowed: {', '.join(methods)}"
        body = problem_body(status=error.status_code, title=title, detail=detail, slug=slug, request=request)
        return problem_response(body, headers or None)

    @app.exception_handler(OperationalError)
    async def database_error(request: Request, error: OperationalError) -> JSONResponse:
        if not is_statement_timeout(error):
            raise error  # the request guard logs it and answers a 500
        log.warning("statement timeout on %s %s", request.method, request.url.path)
        body = problem_body(
            status=503,
            title="Service unavailable",
            detail="the database took too long to answer this request; narrow it or try again later",
            slug="timeout",
            request=request,
        )
        return problem_response(body, {"Retry-After": "5"})
