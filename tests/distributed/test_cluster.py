"""Distributed mode end to end: PostgreSQL, RabbitMQ, the API under uvicorn and two worker processes.

Real photos are uploaded; one worker is killed with SIGKILL while it holds a task. Every photo must be
analysed exactly once (one analysis, one embedding, counters that add up), by both workers, and the
dead worker's task must be finished by the other. Skipped only when no RabbitMQ answers.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine

from db.models import Detection, Face, Job, JobTask, PhotoAnalysis, PhotoEmbedding, WorkerStat
from services.jobs.distributed import delete_queues
from tests.paths import MODEL_DIR, REPO_ROOT, TESTDATA_DIR

BROKER_URL = os.environ.get("SHOEBOX_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PHOTOS = 16
TASK_SIZE = 2


def _broker_reachable() -> bool:
    address = urlsplit(BROKER_URL)
    default_port = 6379 if address.scheme.startswith("redis") else 5672
    try:
        with socket.create_connection(
            (address.hostname or "127.0.0.1", address.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _broker_reachable(), reason=f"no broker answers at {BROKER_URL}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _photos(count: int) -> list[Path]:
    images = sorted((TESTDATA_DIR / "detection" / "images").glob("*.jpg"))
    assert len(images) >= count, f"need {count} photos under {TESTDATA_DIR / 'detection'}"
    return images[:count]


class Cluster:
    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.tmp_path = tmp_path
        self.key = "cluster-test-key-" + uuid.uuid4().hex
        self.port = _free_port()
        self.env = {
            **os.environ,
            "SHOEBOX_DATABASE_URL": database_url,
            "SHOEBOX_BLOB_DIR": str(tmp_path / "shared-blobs"),
            "SHOEBOX_MODEL_DIR": str(MODEL_DIR),
            "SHOEBOX_JOB_BACKEND": "dramatiq",
            "SHOEBOX_BROKER_URL": BROKER_URL,
            "SHOEBOX_BROKER_NAMESPACE": f"test-{uuid.uuid4().hex[:8]}.",
            "SHOEBOX_TASK_BATCH_SIZE": str(TASK_SIZE),
            "SHOEBOX_JOB_POLL_SECONDS": "0.1",
            "SHOEBOX_ONNX_INTRA_OP_THREADS": "1",
            "SHOEBOX_METRICS_TOKEN": "metrics-token",
            "SHOEBOX_URL_SECRET": "cluster-test-secret",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        data_dir = self.tmp_path / name  # each process its own machine: only blobs and database shared
        data_dir.mkdir()
        log = (self.tmp_path / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**self.env, "SHOEBOX_DATA_DIR": str(data_dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = process
        return process

    def start_api(self) -> None:
        self.start(
            "api",
            [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--port", str(self.port)],
        )

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        return self.start(name, [sys.executable, "-m", "services.jobs.worker", "--threads", "1"])

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _wait(check: Any, *, timeout: float, what: str, cluster: Cluster, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        for name, process in cluster.processes.items():
            if process.poll() is not None and process.returncode != -signal.SIGKILL:
                pytest.fail(f"{name} exited with {process.returncode}:\n{cluster.log(name)}")
        time.sleep(every)
    logs = "\n".join(f"--- {name}\n{cluster.log(name)}" for name in cluster.processes)
    pytest.fail(f"timed out waiting for {what}\n{logs}")


def _box(model: type[Detection] | type[Face]) -> tuple[Any, ...]:
    return (model.box_x, model.box_y, model.box_w, model.box_h)


@pytest.fixture
def cluster(tmp_path: Path, own_postgres_url: str) -> Iterator[Cluster]:
    # Its own database: the checks below count every analysis, embedding and face row there is.
    running = Cluster(tmp_path, own_postgres_url)
    running.env["SHOEBOX_BOOTSTRAP_KEY"] = running.key
    try:
        yield running
    finally:
        running.stop()
        delete_queues(BROKER_URL, running.env["SHOEBOX_BROKER_NAMESPACE"])


@pytest.fixture
def database(own_postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(own_postgres_url)
    yield engine
    engine.dispose()


def test_two_workers_share_the_analysis_and_a_killed_worker_loses_nothing(
    cluster: Cluster, database: Engine
) -> None:
    cluster.start_api()
    base = f"http://127.0.0.1:{cluster.port}"
    headers = {"Authorization": f"Bearer {cluster.key}"}
    with httpx.Client(base_url=base, timeout=30) as http:

        def api_ready() -> bool:
            try:
                return http.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        _wait(api_ready, timeout=60, what="the API", cluster=cluster, every=0.2)
        # Fresh tables in this database: the workers register once the API has migrated it.
        with database.connect() as conn:
            conn.execute(text("DELETE FROM worker_stats"))
            conn.commit()
        first = cluster.start_worker("worker-1")
        second = cluster.start_worker("worker-2")

        files = [("files", (path.name, path.read_bytes(), "image/jpeg")) for path in _photos(PHOTOS)]
        response = http.post("/v1/photos", files=files, headers=headers)
        assert response.status_code == 201, response.text
        photo_ids = [result["photo"]["id"] for result in response.json()["results"]]
        assert len(set(photo_ids)) == PHOTOS

        def worker_ids() -> dict[int, str]:
            with database.connect() as conn:
                rows = conn.execute(select(WorkerStat.worker_id)).scalars().all()
            return {int(worker_id.split(":")[1]): worker_id for worker_id in rows}

        workers = _wait(
            lambda: len(worker_ids()) == 2 and worker_ids(), timeout=60, what="workers", cluster=cluster
        )
        pid_of = {worker_id: pid for pid, worker_id in workers.items()}

        def a_worker_to_kill() -> tuple[str, str] | None:
            """Both workers have finished a task, and one holds another, unfinished one: (worker, task),
            read in one query so the kill follows the sighting at once."""
            with database.connect() as conn:
                done = dict(conn.execute(select(WorkerStat.worker_id, WorkerStat.tasks)).all())
                if len(done) < 2 or min(done.values()) < 1:
                    return None
                holding = conn.execute(
                    select(JobTask.worker_id, JobTask.id).where(
                        JobTask.state == "queued", JobTask.deliveries == 1, JobTask.worker_id.is_not(None)
                    )
                ).first()
            return (holding[0], holding[1]) if holding else None

        victim, victim_task = _wait(
            a_worker_to_kill, timeout=120, what="both workers busy", cluster=cluster, every=0.02
        )
        os.kill(pid_of[victim], signal.SIGKILL)
        with database.connect() as conn:
            # On a busy machine the task may have finished between the sighting and the kill.
            killed_mid_task = (
                conn.execute(select(JobTask.state).where(JobTask.id == victim_task)).scalar_one() != "done"
            )
        survivor = next(worker_id for worker_id in pid_of if worker_id != victim)

        def analysis_finished() -> dict[str, Any] | None:
            jobs = http.get("/v1/jobs", params={"limit": 10}, headers=headers).json()["items"]
            analyse = [job for job in jobs if job["type"] == "analyze"]
            return analyse[0] if analyse and analyse[0]["state"] in ("succeeded", "failed") else None

        job = _wait(analysis_finished, timeout=120, what="the analysis job", cluster=cluster, every=0.2)
        assert (job["state"], job["total"], job["done"], job["failed"]) == ("succeeded", PHOTOS, PHOTOS, 0)
        metrics = http.get("/metrics", headers={"Authorization": "Bearer metrics-token"}).text
        # What the workers wrote reaches search through the API (the index follows the analysis).
        photo = http.get(f"/v1/photos/{photo_ids[0]}", headers=headers).json()
        assert photo["analysis_state"] == "done" and photo["tags"], photo
        tag = photo["tags"][0]["name"]
        found = http.get("/v1/search", params={"q": tag, "limit": 50}, headers=headers).json()["items"]
        assert photo_ids[0] in {item["photo"]["id"] for item in found}, (tag, found)

    with database.connect() as conn:
        analyses = conn.execute(
            select(PhotoAnalysis.photo_id, func.count()).group_by(PhotoAnalysis.photo_id)
        ).all()
        assert sorted(photo_id for photo_id, _ in analyses) == sorted(photo_ids)
        assert {count for _, count in analyses} == {1}
        embeddings = conn.execute(
            select(PhotoEmbedding.photo_id, PhotoEmbedding.model, func.count()).group_by(
                PhotoEmbedding.photo_id, PhotoEmbedding.model
            )
        ).all()
        assert {count for *_, count in embeddings} == {1} and len({p for p, *_ in embeddings}) == PHOTOS
        # A re-run batch replaced its rows: no detection or face is there twice.
        for model, columns in (
            (
                Detection,
                (Detection.photo_id, Detection.class_name, Detection.score, *_box(Detection)),
            ),
            (Face, (Face.photo_id, *_box(Face))),
        ):
            duplicates = conn.execute(
                select(*columns, func.count()).group_by(*columns).having(func.count() > 1)
            ).all()
            assert not duplicates, f"{model.__name__} rows written twice: {duplicates}"
        states = conn.execute(text("SELECT analysis_state, count(*) FROM photos GROUP BY 1")).all()
        assert states == [("done", PHOTOS)]
        stats = dict(conn.execute(select(WorkerStat.worker_id, WorkerStat.items_done)).all())
        # Both did work, and the counts add up exactly: the killed task was counted once, by the survivor.
        assert stats[victim] > 0 and stats[survivor] > 0 and sum(stats.values()) == PHOTOS
        task = conn.execute(
            select(JobTask.state, JobTask.worker_id, JobTask.deliveries).where(JobTask.id == victim_task)
        ).one()
        if killed_mid_task:
            assert tuple(task) == ("done", survivor, 2)
        else:
            assert tuple(task) == ("done", victim, 1)
        assert conn.execute(select(func.count()).select_from(Job).where(Job.state == "running")).scalar() == 0
    assert first.poll() == -signal.SIGKILL or second.poll() == -signal.SIGKILL
    assert "# TYPE shoebox_queue_tasks gauge" in metrics
    assert f'shoebox_worker_items_total{{worker="{survivor}"' in metrics
