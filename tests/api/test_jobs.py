"""The job runner: verify jobs through HTTP, atomic claims, resume after a crash, cancel."""

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from db.models import Job
from db.types import utcnow
from services.jobs.service import JobContext, JobType, claim_next_job, create_job, run_job
from tests.api.test_faces import FACES_DIR, FACES_TRUTH
from tests.api.test_photos_upload import EXIF_DIR, EXIF_TRUTH
from tests.conftest import OwnerAuth
from tests.helpers import upload, wait_for_job


def upload_some(client: TestClient, owner: OwnerAuth, count: int) -> list[str]:
    names = sorted(EXIF_TRUTH)[:count]
    results = upload(client, owner, [(n, (EXIF_DIR / "images" / n).read_bytes()) for n in names]).json()[
        "results"
    ]
    return [r["photo"]["id"] for r in results]


def test_verify_job_reports_a_corrupted_original(client: TestClient, owner: OwnerAuth) -> None:
    photo_ids = upload_some(client, owner, 3)
    created = client.post("/v1/jobs", headers=owner.headers, json={"type": "verify"})
    assert created.status_code == 202 and created.json()["total"] == 3
    job = wait_for_job(client, owner, created.json()["id"])
    assert (job["state"], job["done"], job["failed"]) == ("succeeded", 3, 0)

    photo = client.get(f"/v1/photos/{photo_ids[0]}", headers=owner.headers).json()
    path = client.app.state.store.path_for(photo["sha256"])
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-10] + b"0123456789")
        job = wait_for_job(
            client,
            owner,
            client.post("/v1/jobs", headers=owner.headers, json={"type": "verify"}).json()["id"],
        )
        assert (job["done"], job["failed"]) == (2, 1)
        assert job["errors"] == [
            {"item": photo_ids[0], "error": "original is corrupted: its sha256 no longer matches"}
        ]
    finally:
        path.write_bytes(original)


def test_unknown_job_type_is_422(client: TestClient, owner: OwnerAuth) -> None:
    response = client.post("/v1/jobs", headers=owner.headers, json={"type": "paint"})
    assert response.status_code == 422 and "paint" in response.json()["detail"]


def test_only_one_worker_claims_a_job(client: TestClient, owner: OwnerAuth) -> None:
    sessions = client.app.state.sessions
    runner = client.app.state.job_runner
    runner.stop()  # keep the app's own workers out of this race
    try:
        with sessions() as db:
            job = create_job(db, owner_id=owner.id, type="verify", items=[])
            db.commit()
            job_id = job.id
        claims: list[str | None] = []
        barrier = threading.Barrier(4)

        def claim(worker: str) -> None:
            with sessions() as db:
                barrier.wait()
                claimed = claim_next_job(db, worker_id=worker)
                claims.append(claimed.id if claimed and claimed.id == job_id else None)

        threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert claims.count(job_id) == 1
    finally:
        runner.start()


def test_a_job_orphaned_by_a_crash_is_resumed(client: TestClient, owner: OwnerAuth) -> None:
    photo_ids = upload_some(client, owner, 4)
    with client.app.state.sessions() as db:
        job = create_job(db, owner_id=owner.id, type="verify", items=photo_ids)
        # As a crashed worker leaves it: running, two items done, silent for long.
        job.state, job.worker_id, job.position, job.done = "running", "dead-worker", 2, 2
        job.heartbeat_at = utcnow() - timedelta(hours=1)
        db.commit()
        job_id = job.id
    client.app.state.job_runner.wake()
    finished = wait_for_job(client, owner, job_id)
    assert (finished["state"], finished["done"], finished["failed"]) == ("succeeded", 4, 0)
    with client.app.state.sessions() as db:
        assert db.get(Job, job_id).attempts == 1


def test_cancel_stops_a_job(client: TestClient, owner: OwnerAuth) -> None:
    sessions = client.app.state.sessions
    with sessions() as db:
        job = create_job(db, owner_id=owner.id, type="verify", items=["x"] * 1)
        job.state = "running"
        job.worker_id = "someone"
        job.heartbeat_at = utcnow()
        db.commit()
        job_id = job.id
    response = client.delete(f"/v1/jobs/{job_id}", headers=owner.headers)
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    # The worker that held it sees the cancellation and does not overwrite it.
    run_job(client.app.state.job_runner.context, job_id, "someone")
    assert client.get(f"/v1/jobs/{job_id}", headers=owner.headers).json()["state"] == "cancelled"
    listed = client.get("/v1/jobs", headers=owner.headers, params={"limit": 1})
    assert listed.status_code == 200 and len(listed.json()["items"]) == 1


def test_a_job_interrupted_by_shutdown_goes_back_to_the_queue(client: TestClient, owner: OwnerAuth) -> None:
    sessions = client.app.state.sessions
    runner = client.app.state.job_runner
    runner.stop()  # keep the app's own workers from picking the job up again during the check
    try:
        with sessions() as db:
            job = create_job(db, owner_id=owner.id, type="verify", items=["a", "b"])
            job.state, job.worker_id, job.heartbeat_at = "running", "stopping-worker", utcnow()
            db.commit()
            job_id = job.id
        run_job(runner.context, job_id, "stopping-worker", should_stop=lambda: True)
        with sessions() as db:
            handed_back = db.get(Job, job_id)
            assert (handed_back.state, handed_back.worker_id, handed_back.position) == ("queued", None, 0)
    finally:
        runner.start()
    assert wait_for_job(client, owner, job_id)["state"] in ("succeeded", "failed")


def test_uploads_waiting_for_analysis_share_one_job(client: TestClient, owner: OwnerAuth) -> None:
    runner = client.app.state.job_runner
    runner.stop()  # nothing claims the queued job while the uploads arrive
    try:
        names = sorted(EXIF_TRUTH)[:3]
        for name in names:
            upload(client, owner, [(name, (EXIF_DIR / "images" / name).read_bytes())])
        queued = client.get("/v1/jobs", headers=owner.headers, params={"state": "queued"}).json()["items"]
        analyze = [job for job in queued if job["type"] == "analyze"]
        assert len(analyze) == 1 and analyze[0]["total"] == 3
    finally:
        runner.start()
    assert wait_for_job(client, owner, analyze[0]["id"], timeout=120)["done"] == 3


def test_analysis_progress_moves_photo_by_photo(client: TestClient, owner: OwnerAuth) -> None:
    """A client polling its upload's job sees `done` step through the photos, not jump by a batch."""
    names = sorted(FACES_TRUTH)[10:16]
    files = [("files", (n, (FACES_DIR / "images" / n).read_bytes(), "image/jpeg")) for n in names]
    job_id = client.post("/v1/photos", headers=owner.headers, files=files).json()["job_id"]
    seen: set[int] = set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=owner.headers).json()
        seen.add(job["done"])
        if job["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.01)
    assert job["state"] == "succeeded" and job["done"] == len(names)
    # Six photos of a few hundred ms each, polled every 10 ms: most steps are seen (a batch of 8 would
    # show 0 and 6 only).
    assert len(seen - {0, len(names)}) >= 3, sorted(seen)


@pytest.mark.parametrize("stop", ["cancel", "shutdown"])
def test_an_analysis_stopped_midway_counts_exactly_the_photos_it_stored(
    client: TestClient, owner: OwnerAuth, stop: str
) -> None:
    """The runner analyses the next batch while it stores the current one. A job stopped midway counts
    only what it stored: every photo ends analysed or pending, a cancelled job drops the batch it read
    ahead, and a job handed back at shutdown stores the batch it holds and resumes right after it."""
    sessions = client.app.state.sessions
    runner = client.app.state.job_runner
    runner.stop()  # this test runs the job itself
    try:
        names = sorted(FACES_TRUTH)[20:28]
        files = [("files", (n, (FACES_DIR / "images" / n).read_bytes(), "image/jpeg")) for n in names]
        uploaded = client.post("/v1/photos", headers=owner.headers, files=files).json()
        photo_ids = [result["photo"]["id"] for result in uploaded["results"]]
        job_id = uploaded["job_id"]
        with sessions() as db:
            claimed = claim_next_job(db, worker_id="stopping-worker")
            assert claimed is not None and claimed.id == job_id

        def done() -> int:
            with sessions() as db:
                return db.get(Job, job_id).done

        if stop == "shutdown":
            run_job(runner.context, job_id, "stopping-worker", should_stop=lambda: done() >= 2)
        else:
            worker = threading.Thread(target=run_job, args=(runner.context, job_id, "stopping-worker"))
            worker.start()
            deadline = time.monotonic() + 120
            while done() < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert client.delete(f"/v1/jobs/{job_id}", headers=owner.headers).json()["state"] == "cancelled"
            worker.join(timeout=120)
        states = [
            client.get(f"/v1/photos/{photo_id}", headers=owner.headers).json()["analysis_state"]
            for photo_id in photo_ids
        ]
        assert set(states) <= {"done", "pending"}, states
        analysed = states.count("done")
        assert 2 <= analysed < len(names), states
        with sessions() as db:
            job = db.get(Job, job_id)
            if stop == "shutdown":
                assert (job.state, job.position, job.done) == ("queued", analysed, analysed)
                assert states[:analysed] == ["done"] * analysed
            else:
                assert job.state == "cancelled" and job.done <= analysed
    finally:
        runner.start()
    if stop == "shutdown":
        assert wait_for_job(client, owner, job_id, timeout=120)["done"] == len(names)


def test_a_job_type_has_a_handler_or_a_preparer_never_both() -> None:
    def handler(
        context: JobContext, owner_id: str, batch: list[str], params: dict[str, Any]
    ) -> dict[str, str]:
        return {}

    def prepare(
        context: JobContext, owner_id: str, batch: list[str], params: dict[str, Any]
    ) -> Callable[[], dict[str, str]]:
        return lambda: {}

    with pytest.raises(ValueError, match="handler or a preparer"):
        JobType(name="neither", handler=None)
    with pytest.raises(ValueError, match="handler or a preparer"):
        JobType(name="both", handler=handler, prepare=prepare)
    assert JobType(name="split", handler=None, prepare=prepare).run(cast(JobContext, None), "o", [], {}) == {}
