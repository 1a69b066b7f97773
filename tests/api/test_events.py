"""The event stream tells an owner, while it happens, how analysis progresses and which photos are done."""

import json
import time

from fastapi.testclient import TestClient

from tests.api.test_faces import FACES_DIR, FACES_TRUTH
from tests.conftest import OwnerAuth, new_owner


def read_events(client: TestClient, owner: OwnerAuth, until: object, max_seconds: float = 240) -> list:
    """(event, data) pairs from GET /v1/events until `until(events)` holds or the stream closes."""
    events: list[tuple[str, dict]] = []
    kind = None
    with client.stream(
        "GET", "/v1/events", headers=owner.headers, params={"max_seconds": max_seconds}
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
                if until(events):  # type: ignore[operator]
                    break
    return events


def test_event_stream_follows_a_real_analysis(client: TestClient, owner: OwnerAuth) -> None:
    names = sorted(FACES_TRUTH)[:3]
    files = [("files", (n, (FACES_DIR / "images" / n).read_bytes(), "image/jpeg")) for n in names]
    uploaded = client.post("/v1/photos", headers=owner.headers, files=files).json()
    job_id = uploaded["job_id"]
    photo_ids = {r["photo"]["id"] for r in uploaded["results"]}
    assert job_id, uploaded

    def finished(events: list) -> bool:
        analysed = {data["photo_id"] for kind, data in events if kind == "photo.analysed"}
        job_done = any(
            kind == "job" and data["id"] == job_id and data["state"] == "succeeded" for kind, data in events
        )
        return job_done and photo_ids <= analysed

    started = time.monotonic()
    events = read_events(client, owner, finished)
    assert finished(events), events
    assert time.monotonic() - started < 240
    job_events = [data for kind, data in events if kind == "job" and data["id"] == job_id]
    assert job_events[-1]["done"] == job_events[-1]["total"] == 3
    done_counts = [data["done"] for data in job_events]
    assert done_counts == sorted(done_counts), "progress only moves forward"
    analysed = [data for kind, data in events if kind == "photo.analysed"]
    assert {data["photo_id"] for data in analysed} == photo_ids
    assert all(data["analysis_state"] == "done" for data in analysed)

    # Owner-scoped: another owner's stream says nothing about this work.
    stranger = new_owner(client)
    quiet = read_events(client, stranger, lambda events: False, max_seconds=2)
    assert quiet == []
    assert client.get("/v1/events").status_code == 401


def test_head_of_the_stream_answers_its_headers_at_once(client: TestClient, owner: OwnerAuth) -> None:
    started = time.monotonic()
    # Without an end of its own, a GET would stream for a minute; a HEAD wants the headers only.
    head = client.head("/v1/events", headers=owner.headers, params={"max_seconds": 60})
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""
    assert time.monotonic() - started < 10
