"""Server-sent events: job progress and analysed photos, for the owner of the request."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentOwner, SettingsDep
from api.errors import problem_responses
from api.http import HEAD_REQUEST
from services.events.service import Event, EventCursor

router = APIRouter(tags=["events"])

PROBLEMS = problem_responses()
# A comment line now and then keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0


def _frame(event: Event, sequence: int) -> str:
    return f"id: {sequence}\nevent: {event.kind}\ndata: {json.dumps(event.data)}\n\n"


@router.get(
    "/v1/events",
    name="stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`event: job` (id, type, state, total, done, failed, finished_at) and "
            "`event: photo.analysed` (photo_id, analysis_state, analysed_at), each with JSON `data`",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **PROBLEMS,
    },
)
async def stream_events(
    request: Request,
    owner: CurrentOwner,
    settings: SettingsDep,
    max_seconds: Annotated[
        float | None, Query(gt=0, le=86400, description="close the stream after this long (default: never)")
    ] = None,
) -> StreamingResponse:
    """Job progress and "photo analysed" events as they happen, read from the database (so any API
    process serves them, whichever worker does the work)."""
    sessions = request.app.state.sessions
    cursor = EventCursor(owner_id=owner)

    def poll() -> list[Event]:
        with sessions() as db:
            return cursor.poll(db)

    async def frames() -> AsyncIterator[str]:
        started = last_sent = time.monotonic()
        sequence = 0
        yield "retry: 2000\n\n"
        if request.scope.get(HEAD_REQUEST):
            return
        while max_seconds is None or time.monotonic() - started < max_seconds:
            if await request.is_disconnected():
                return
            for event in await run_in_threadpool(poll):
                sequence += 1
                last_sent = time.monotonic()
                yield _frame(event, sequence)
            if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(settings.events_poll_seconds)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
