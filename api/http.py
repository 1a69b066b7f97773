"""HTTP semantics every route shares: HEAD, Allow on 405, conditional requests, content types, and
refusing query parameters a route does not know."""

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.params import Form
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import Invalid, UnsupportedMedia
from core.signing import SIGNED_URL_PARAMS

HEAD_REQUEST = "shoebox.head_request"


class HeadAsGet:
    """Answers HEAD wherever GET is: the GET route runs and only its status and headers are sent (so
    Content-Length, ETag and Content-Type are exactly those of the GET)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        finished = False

        async def headers_only(message: Message) -> None:
            nonlocal finished
            if message["type"] != "http.response.body":
                await send(message)
            elif not finished:
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        # Streams look at HEAD_REQUEST to end at once: their headers are all a HEAD wants.
        await self.app({**scope, "method": "GET", HEAD_REQUEST: True}, receive, headers_only)


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route of this path answers (a path's methods are spread over several routes)."""
    methods: set[str] = set()
    # Route contexts carry the full path of routes included with a prefix.
    for route in iter_route_contexts(app.router.routes):
        path_regex = getattr(route, "path_regex", None)
        if path_regex is not None and path_regex.match(scope["path"]):
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub_dependant in dependant.dependencies:
        names |= _query_names(sub_dependant)
    return names


_KNOWN_QUERY: dict[int, frozenset[str]] = {}


def _known_query(route: APIRoute) -> frozenset[str]:
    # Routes live as long as the app, so their id is a stable key (APIRoute is not hashable).
    known = _KNOWN_QUERY.get(id(route))
    if known is None:
        known = _KNOWN_QUERY[id(route)] = frozenset(_query_names(route.dependant))
    return known


def _takes_json(route: APIRoute) -> bool:
    return route.body_field is not None and not isinstance(route.body_field.field_info, Form)


def http_contract(request: Request) -> None:
    """App-wide dependency: 422 naming query parameters the route does not know (a typo such as
    `tag=` for `tags=` would otherwise silently widen a selection), 415 for a body that is not JSON
    on a JSON route."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _known_query(route)
    signed = SIGNED_URL_PARAMS if "sig" in request.query_params else frozenset()
    unknown = sorted({name for name in request.query_params if name not in known and name not in signed})
    if unknown:
        raise Invalid(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            errors=[
                {"field": name, "location": "query", "message": "unknown query parameter"} for name in unknown
            ],
        )
    content_type = request.headers.get("content-type", "")
    if _takes_json(route) and content_type:
        media_type = content_type.split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise UnsupportedMedia(f"send the body as application/json, not {media_type or 'no type'}")


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def not_modified(request: Request, etag: str, last_modified: datetime | None = None) -> bool:
    """RFC 9110 conditional GET: If-None-Match by weak comparison (W/ ignored); If-Modified-Since only
    when no If-None-Match was sent."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        opaque = etag.removeprefix("W/")
        candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return opaque in candidates or "*" in candidates
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since and last_modified is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False  # an unparsable date is ignored (RFC 9110 13.1.3)
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return last_modified.astimezone(UTC).replace(microsecond=0) <= since
    return False
