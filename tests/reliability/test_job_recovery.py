"""Crash recovery of jobs: heartbeats, reclaim within seconds, fencing by claim token, start-up
reclaim of a dead local worker's jobs (issue 17, item 8)."""

import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from db.models import Job, Photo
from db.types import utcnow
from services.jobs.service import (
    JobContext,
    JobRunner,
    JobType,
    claim_next_job,
    create_job,
    register_job_type,
    requeue_stale_jobs,
    run_job,
)
from tests.api.test_jobs import upload_some, wait_for_job
from tests.conftest import OwnerAuth

# The "paused" worker of the fencing test waits here until its claim has been taken over.
_release_paused_worker = threading.Event()
_caption_written: list[str] = []


def _write_caption_batch(
    context: JobContext, owner_id: str, items: list[str], params: dict[str, Any]
) -> dict[str, str]:
    if params.get("pause"):
        _release_paused_worker.wait(30)
    with context.sessions() as db:
        for photo_id in items:
            photo = db.get(Photo, photo_id)
            assert photo is not None
            photo.caption = params["caption"]
        db.commit()
    _caption_written.append(params["caption"])
    return {}


def _slow_batch(
    context: JobContext, owner_id: str, items: list[str], params: dict[str, Any]
) -> dict[str, str]:
    time.sleep(params["seconds"])
    return {}


register_job_type(JobType(name="test-caption", handler=_write_caption_batch))
register_job_type(JobType(name="test-slow", handler=_slow_batch))


def _running_job(client: TestClient, owner: OwnerAuth, *, worker_id: str, silent_for: timedelta) -> str:
    with client.app.state.sessions() as db:  # type: ignore[attr-defined]
        job = create_job(db, owner_id=owner.id, type="verify", items=upload_some(client, owner, 2))
        job.state, job.worker_id, job.claim_token = "running", worker_id, "lost"
        job.heartbeat_at = utcnow() - silent_for
        db.commit()
        return job.id


def test_a_job_whose_heartbeat_stopped_is_reclaimed_within_15_seconds(
    client: TestClient, owner: OwnerAuth
) -> None:
    # As kill -9 leaves it: running, its worker silent for 13 s (the old rule waited 120 s).
    job_id = _running_job(client, owner, worker_id="gone-host:1:abcdef:0", silent_for=timedelta(seconds=13))
    client.app.state.job_runner.wake()  # type: ignore[attr-defined]
    started = time.monotonic()
    finished = wait_for_job(client, owner, job_id, timeout=15)
    assert finished["state"] == "succeeded" and time.monotonic() - started < 15


def test_start_up_reclaims_the_jobs_of_a_dead_local_worker_at_once(
    client: TestClient, owner: OwnerAuth
) -> None:
    runner = client.app.state.job_runner  # type: ignore[attr-defined]
    runner.stop()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_worker = f"{socket.gethostname()}:{dead.stdout.strip()}:abcdef:0"
    # Its heartbeat is fresh: only knowing that its process is gone can free it this fast.
    job_id = _running_job(client, owner, worker_id=dead_worker, silent_for=timedelta(seconds=0))
    runner.start()
    assert wait_for_job(client, owner, job_id, timeout=8)["state"] == "succeeded"


def test_a_worker_that_lost_its_claim_cannot_commit_its_batch(client: TestClient, owner: OwnerAuth) -> None:
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    runner = client.app.state.job_runner  # type: ignore[attr-defined]
    [photo_id] = upload_some(client, owner, 1)
    runner.stop()  # only the two workers of this test touch the job
    try:
        _release_paused_worker.clear()
        with sessions() as db:
            # Nothing else queued (the upload's analysis) may be claimed in place of this job.
            db.execute(update(Job).where(Job.state == "queued").values(state="cancelled"))
            job_id = create_job(
                db,
                owner_id=owner.id,
                type="test-caption",
                items=[photo_id],
                params={"caption": "from the paused worker", "pause": True},
            ).id
            db.commit()
            claimed = claim_next_job(db, worker_id="worker-a")
            assert claimed is not None and claimed.id == job_id
        paused = threading.Thread(target=run_job, args=(runner.context, job_id, "worker-a"))
        paused.start()
        time.sleep(0.3)  # worker A is inside its batch, as if the process were stopped
        with sessions() as db:
            job = db.get(Job, job_id)
            job.heartbeat_at = utcnow() - timedelta(minutes=5)
            job.params = {"caption": "from worker b"}
            db.commit()
            assert requeue_stale_jobs(db) == 1
            db.commit()
            assert claim_next_job(db, worker_id="worker-b") is not None
        run_job(runner.context, job_id, "worker-b")
        _release_paused_worker.set()  # worker A wakes up and tries to write its batch
        paused.join(30)
        with sessions() as db:
            assert db.get(Photo, photo_id).caption == "from worker b"
            job = db.get(Job, job_id)
            assert (job.state, job.done, job.worker_id) == ("succeeded", 1, "worker-b")
    finally:
        _release_paused_worker.set()
        runner.start()


def test_heartbeats_keep_a_long_batch_from_being_reclaimed(client: TestClient, owner: OwnerAuth) -> None:
    app_runner = client.app.state.job_runner  # type: ignore[attr-defined]
    app_runner.stop()
    settings = client.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"job_heartbeat_seconds": 0.2, "job_stale_seconds": 1.0}
    )
    context = replace(app_runner.context, settings=settings)
    first, second = JobRunner(context, 1, 0.05), JobRunner(context, 1, 0.05)
    try:
        with context.sessions() as db:
            job_id = create_job(
                db, owner_id=owner.id, type="test-slow", items=["a"], params={"seconds": 3}
            ).id
            db.commit()
        first.start()
        second.start()
        # Read from the database: a test job type is no type the API describes.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with context.sessions() as db:
                job = db.get(Job, job_id)
                assert job is not None
                if job.state in ("succeeded", "failed"):
                    break
            time.sleep(0.1)
        assert (job.state, job.attempts) == ("succeeded", 1)
    finally:
        first.stop()
        second.stop()
        app_runner.start()
