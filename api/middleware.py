"""The request guard: one pure ASGI middleware around every route.

It gives each request an id (X-Request-ID), enforces the input limits that must hold before any
route reads the body (request size while reading, JSON size, body read timeouts, NUL characters,
concurrent uploads), and turns any unhandled exception into a logged, counted problem+json 500
with the request id. It is pure ASGI rather than `@app.middleware("http")` because Starlette's
exception path re-raises after answering a 500, which makes the server drop the connection.
"""

import asyncio
import json
import logging
import re
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from api.errors import PROBLEM_MEDIA_TYPE
from core.config import Settings
from core.errors import PROBLEM_BASE

log = logging.getLogger("shoebox")

# A client's own id is kept only when it is short and plain, so it cannot forge log lines.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# A JSON string can carry NUL only as the escape \u0000; an odd run of backslashes before the `u`
# makes it an escape rather than a literal backslash followed by "u0000".
_JSON_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class BodyTooLarge(HTTPException):
    """Raised from `receive` so FastAPI's body parsing passes it on unchanged as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"the request body is larger than the limit of {limit} bytes", {"Connection": "close"}
        )


class BodyTimeout(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(408, detail, {"Connection": "close"})


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        # One semaphore per event loop: an asyncio primitive must not be shared across loops.
        self._upload_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        sent: dict[str, int] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self._guarded(scope, receive, send_with_id, request_id)
        except Exception:
            log.exception("unhandled error on %s %s (request %s)", scope["method"], scope["path"], request_id)
            if "status" not in sent:
                await _send_problem(
                    send_with_id,
                    scope,
                    request_id,
                    500,
                    "internal",
                    "Internal server error",
                    f"something went wrong on our side; quote request id {request_id} when reporting it",
                )
            else:
                sent["status"] = 500  # the answer was cut short: count it as the failure it is
        finally:
            elapsed = time.perf_counter() - started
            status = sent.get("status", 500)
            # The route template, not the raw path, so ids do not explode the metric's label set.
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.record_request(scope["method"], route, status, elapsed)
            log.info(
                "%s %s %d %.1fms id=%s", scope["method"], scope["path"], status, elapsed * 1000, request_id
            )

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        settings = self.settings
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower():
            await _send_problem(
                send, scope, request_id, 422, "invalid", "Invalid request", "NUL characters are not allowed"
            )
            return
        content_type = _header(scope, b"content-type").lower()
        is_json = content_type.startswith("application/json") or content_type.endswith("+json")
        limit = settings.max_json_bytes if is_json else settings.max_request_bytes
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            # Refused before a single body byte is read or spooled.
            await _send_problem(
                send,
                scope,
                request_id,
                413,
                "too-large",
                "Payload too large",
                f"the request body is larger than the limit of {limit} bytes",
                close=True,
            )
            return
        limited = _LimitedReceive(
            receive,
            limit=limit,
            idle_timeout=settings.request_body_idle_timeout_seconds,
            total_timeout=settings.request_body_timeout_seconds,
        )
        if is_json and scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            try:
                body = await limited.read_all()
            except HTTPException as error:
                await _send_problem(
                    send, scope, request_id, error.status_code, *_slug(error), str(error.detail), close=True
                )
                return
            if _JSON_NUL_ESCAPE.search(body):
                await _send_problem(
                    send,
                    scope,
                    request_id,
                    422,
                    "invalid",
                    "Invalid request",
                    "NUL characters are not allowed",
                )
                return
            await self.app(scope, _replay(body, receive), send)
            return
        if content_type.startswith("multipart/form-data"):
            # Uploads hold a file in memory and decode it: bounded, so a burst queues instead of
            # multiplying the memory peak.
            async with self._slots():
                await self.app(scope, limited, send)
            return
        await self.app(scope, limited, send)

    def _slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._upload_slots.get(loop)
        if slots is None:
            slots = self._upload_slots[loop] = asyncio.Semaphore(max(1, self.settings.max_concurrent_uploads))
        return slots


class _LimitedReceive:
    """`receive` that counts body bytes and times out idle or endless bodies, while the body lasts;
    afterwards (disconnect listeners of streaming responses) it passes messages through untouched."""

    def __init__(self, receive: Receive, *, limit: int, idle_timeout: float, total_timeout: float) -> None:
        self._receive = receive
        self._limit = limit
        self._idle_timeout = idle_timeout
        self._deadline = time.monotonic() + total_timeout
        self._received = 0
        self._body_done = False

    async def __call__(self) -> Message:
        if self._body_done:
            return await self._receive()
        remaining = self._deadline - time.monotonic()
        timeout = min(self._idle_timeout, remaining)
        if timeout <= 0:
            raise BodyTimeout("the request body took too long to arrive")
        try:
            message = await asyncio.wait_for(self._receive(), timeout)
        except TimeoutError as exc:
            raise BodyTimeout("the client stopped sending the request body") from exc
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limit:
                raise BodyTooLarge(self._limit)
            if not message.get("more_body", False):
                self._body_done = True
        else:
            self._body_done = True
        return message

    async def read_all(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            message = await self()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _request_id(scope: Scope) -> str:
    offered = _header(scope, b"x-request-id")
    return offered if _CLIENT_REQUEST_ID.match(offered) else uuid.uuid4().hex[:16]


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


def _slug(error: HTTPException) -> tuple[str, str]:
    return ("too-large", "Payload too large") if error.status_code == 413 else ("timeout", "Request timeout")


async def _send_problem(
    send: Callable[[Message], Awaitable[None]],
    scope: MutableMapping[str, Any],
    request_id: str,
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    close: bool = False,
) -> None:
    body = json.dumps(
        {
            "type": PROBLEM_BASE + slug,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope["path"],
            "request_id": request_id,
        }
    ).encode()
    headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    if close:
        # The unread rest of the body would be taken for the next request: end the connection.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
