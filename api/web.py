"""The reference web app: static files from the repo's `web/` folder, served at `/` on the API's origin.

The app talks to the service only through the public HTTP API. Client-side routes (`/people`,
`/photo/<id>`, ...) answer `index.html`; the API's own paths are never shadowed, so an unknown
`/v1/...` path still answers a 404 problem.
"""

import re
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from core.config import REPO_ROOT

WEB_DIR = REPO_ROOT / "web"
# First path segments that belong to the service, never to the web app.
RESERVED = ("v1", "docs", "redoc", "openapi.json", "healthz", "readyz", "metrics")
_WEB_PATH = re.compile(rf"^/(?!(?:{'|'.join(re.escape(r) for r in RESERVED)})(?:/|$)).*$")
# The page loads only its own scripts, styles and images; the API is same-origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Always revalidated (ETag), so a new version of the app is picked up at the next load.
    "Cache-Control": "no-cache",
}


def _static_file(web_dir: Path, url_path: str) -> Path | None:
    """The file a URL path names inside `web_dir`, or None (never a path outside it)."""
    relative = url_path.lstrip("/")
    if not relative:
        return None
    candidate = (web_dir / relative).resolve()
    if not candidate.is_relative_to(web_dir.resolve()) or not candidate.is_file():
        return None
    return candidate


def web_app_route(web_dir: Path = WEB_DIR) -> Route:
    """GET/HEAD for every path outside the API: a file of the app, else its `index.html`."""

    async def serve(request: Request) -> Response:
        path = request.url.path
        found = _static_file(web_dir, path)
        if found is None:
            # A missing asset is a 404; any other path is a client-side route of the app.
            if "." in path.rsplit("/", 1)[-1]:
                return Response("not found", status_code=404, media_type="text/plain")
            found = web_dir / "index.html"
        return FileResponse(found, headers=SECURITY_HEADERS)

    route = Route("/{path:path}", serve, methods=["GET", "HEAD"], include_in_schema=False, name="web-app")
    route.path_regex = _WEB_PATH
    route.param_convertors = {}
    return route


def install_web_app(app: FastAPI, web_dir: Path = WEB_DIR) -> None:
    """Add the web app's catch-all route last, after every API route (a no-op without `web/`)."""
    if (web_dir / "index.html").is_file():
        app.router.routes.append(web_app_route(web_dir))
