"""Distributed tasks without a broker process (Dramatiq's stub broker): exactly-once counting when a
task is delivered again, re-analysis replacing rows instead of adding them, a poison photo failing
alone, a cancelled job's tasks dropped. On SQLite and PostgreSQL."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from api import metrics
from api.main import create_app
from core.config import Settings
from db.models import Detection, Face, Job, JobTask, PhotoAnalysis, PhotoEmbedding, PhotoTag, WorkerStat
from db.types import utcnow
from services.jobs.distributed import (
    WorkerRuntime,
    declare_actors,
    dispatch_queued_jobs,
    install_runtime,
    requeue_interrupted_dispatches,
    run_task,
    run_whole_job,
)
from services.jobs.service import (
    JobContext,
    JobType,
    claim_next_job,
    create_job,
    get_job_type,
    register_job_type,
)
from tests.conftest import OwnerAuth, make_settings, new_owner
from tests.helpers import upload_ids
from tests.paths import TESTDATA_DIR

PHOTOS = sorted((TESTDATA_DIR / "detection" / "images").glob("*.jpg"))[:5]


@pytest.fixture(scope="module")
def quiet_settings(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Settings:
    # No in-process workers and no automatic analysis: the test runs every task itself.
    return make_settings(
        backend,
        tmp_path_factory.mktemp(f"tasks-{backend}"),
        request,
        run_job_workers=False,
        analyze_on_upload=False,
        task_batch_size=3,
    )


@pytest.fixture(scope="module")
def app_client(quiet_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(quiet_settings)) as client:
        yield client


@pytest.fixture(scope="module")
def context(app_client: TestClient, quiet_settings: Settings) -> JobContext:
    state = app_client.app.state  # type: ignore[attr-defined]
    return JobContext(
        sessions=state.sessions, store=state.store, settings=quiet_settings, models=state.models
    )


@pytest.fixture(scope="module")
def runtime(context: JobContext) -> WorkerRuntime:
    return install_runtime(context, queues=["analysis", "default"])


@pytest.fixture
def broker() -> StubBroker:
    stub = StubBroker()
    declare_actors(stub)
    return stub


@pytest.fixture
def photo_ids(app_client: TestClient) -> tuple[OwnerAuth, list[str]]:
    owner = new_owner(app_client)
    ids = upload_ids(app_client, owner, [(path.name, path.read_bytes()) for path in PHOTOS])
    return owner, [ids[path.name] for path in PHOTOS]


def _counts(context: JobContext, photo_ids: list[str]) -> dict[str, int]:
    counted: dict[str, int] = {}
    with context.sessions() as db:
        for model in (Detection, PhotoTag, Face, PhotoEmbedding, PhotoAnalysis):
            column = model.photo_id  # type: ignore[attr-defined]
            counted[model.__name__] = db.scalar(
                select(func.count()).select_from(model).where(column.in_(photo_ids))
            )
    return counted


def _queue_only(context: JobContext, owner_id: str, items: list[str], job_type: str = "analyze") -> str:
    """A job that is the only queued one: others left queued by earlier tests are cancelled, so they
    are not dispatched here."""
    with context.sessions() as db:
        db.execute(update(Job).where(Job.state == "queued").values(state="cancelled"))
        job_id = create_job(db, owner_id=owner_id, type=job_type, items=items).id
        db.commit()
    return job_id


def _dispatch(context: JobContext, broker: StubBroker, owner_id: str, photo_ids: list[str]) -> str:
    job_id = _queue_only(context, owner_id, photo_ids)
    assert dispatch_queued_jobs(context.sessions, broker, context.settings, "dispatcher") == 1
    return job_id


def _tasks(context: JobContext, job_id: str) -> list[JobTask]:
    with context.sessions() as db:
        return list(db.scalars(select(JobTask).where(JobTask.job_id == job_id).order_by(JobTask.seq)))


def _job(context: JobContext, job_id: str) -> Job:
    with context.sessions() as db:
        job = db.get(Job, job_id)
        assert job is not None
        return job


def test_analysing_the_same_photos_again_replaces_their_rows(
    context: JobContext, photo_ids: tuple[OwnerAuth, list[str]]
) -> None:
    owner, ids = photo_ids
    analyze = get_job_type("analyze")  # what a worker runs for a task
    assert analyze is not None
    assert analyze.run(context, owner.id, ids, {}) == {}
    first = _counts(context, ids)
    assert first["Detection"] > 0 and first["PhotoTag"] > 0 and first["PhotoAnalysis"] == len(ids)
    assert analyze.run(context, owner.id, ids, {}) == {}
    assert _counts(context, ids) == first


def test_a_task_delivered_twice_is_counted_once(
    context: JobContext,
    runtime: WorkerRuntime,
    broker: StubBroker,
    photo_ids: tuple[OwnerAuth, list[str]],
) -> None:
    owner, ids = photo_ids
    with context.sessions() as db:
        before = db.get(WorkerStat, runtime.worker_id)
        assert before is not None
        done_before = before.items_done
    job_id = _dispatch(context, broker, owner.id, ids)
    tasks = _tasks(context, job_id)
    assert [len(task.items) for task in tasks] == [3, 2] and {task.queue for task in tasks} == {"analysis"}
    assert broker.queues["analysis"].qsize() == 2  # one message per task
    with context.sessions() as db:
        waiting = metrics.render(db, include_library=True)
    assert 'shoebox_queue_tasks{queue="analysis"} 2' in waiting
    assert 'shoebox_queue_items{queue="analysis"} 5' in waiting
    run_task(runtime, tasks[0].id)
    run_task(runtime, tasks[0].id)  # redelivered after it finished (the ack was lost)
    assert (_job(context, job_id).done, _job(context, job_id).state) == (3, "running")
    run_task(runtime, tasks[1].id)
    run_task(runtime, tasks[1].id)
    job = _job(context, job_id)
    assert (job.state, job.total, job.done, job.failed) == ("succeeded", 5, 5, 0)
    assert _counts(context, ids)["PhotoAnalysis"] == 5
    with context.sessions() as db:
        stat = db.get(WorkerStat, runtime.worker_id)
        assert stat is not None and stat.items_done - done_before == 5
        finished = metrics.render(db, include_library=True)
    assert 'shoebox_queue_tasks{queue="analysis"}' not in finished
    assert f'shoebox_worker_items_total{{worker="{runtime.worker_id}",' in finished


def test_a_photo_on_which_workers_died_fails_alone(
    context: JobContext,
    runtime: WorkerRuntime,
    broker: StubBroker,
    photo_ids: tuple[OwnerAuth, list[str]],
) -> None:
    owner, ids = photo_ids
    job_id = _dispatch(context, broker, owner.id, ids[:3])
    [task] = _tasks(context, job_id)
    with context.sessions() as db:
        # As two deliveries left it: both workers were killed at the task's first photo.
        db.execute(
            update(JobTask).where(JobTask.id == task.id).values(deliveries=2, deliveries_at_position=2)
        )
        db.commit()
    run_task(runtime, task.id)
    job = _job(context, job_id)
    assert (job.state, job.done, job.failed) == ("succeeded", 2, 1)
    assert [error["item"] for error in job.errors] == [ids[0]]
    assert "worker died 2 times" in job.errors[0]["error"]


def test_the_tasks_of_a_cancelled_job_are_dropped(
    context: JobContext,
    runtime: WorkerRuntime,
    broker: StubBroker,
    photo_ids: tuple[OwnerAuth, list[str]],
) -> None:
    owner, ids = photo_ids
    job_id = _dispatch(context, broker, owner.id, ids)
    with context.sessions() as db:
        db.execute(update(Job).where(Job.id == job_id).values(state="cancelled"))
        db.commit()
    for task in _tasks(context, job_id):
        run_task(runtime, task.id)
    assert {task.state for task in _tasks(context, job_id)} == {"cancelled"}
    assert (_job(context, job_id).state, _job(context, job_id).done) == ("cancelled", 0)


_whole_job_runs: list[str] = []


def _count_whole_job_batch(
    context: JobContext, owner_id: str, items: list[str], params: dict[str, Any]
) -> dict[str, str]:
    _whole_job_runs.extend(items)
    return {}


register_job_type(JobType(name="test-whole", handler=_count_whole_job_batch, batch_size=lambda s: 2))


def test_a_job_that_is_not_split_runs_whole_on_the_default_queue_once(
    context: JobContext,
    runtime: WorkerRuntime,
    broker: StubBroker,
    photo_ids: tuple[OwnerAuth, list[str]],
) -> None:
    owner, ids = photo_ids
    job_id = _queue_only(context, owner.id, ids, job_type="test-whole")
    _whole_job_runs.clear()
    assert dispatch_queued_jobs(context.sessions, broker, context.settings, "dispatcher") == 1
    assert _tasks(context, job_id) == [] and broker.queues["default"].qsize() == 1
    run_whole_job(runtime, job_id)
    run_whole_job(runtime, job_id)  # redelivered: the job is finished, nothing runs again
    job = _job(context, job_id)
    assert (job.state, job.done, job.worker_id) == ("succeeded", len(ids), runtime.worker_id)
    assert sorted(_whole_job_runs) == sorted(ids)


class _BrokerFailingOnSecondMessage(StubBroker):
    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        self.sent += 1
        if self.sent == 2:
            raise ConnectionError("broker went away")
        return super().enqueue(message, delay=delay)


def test_a_job_whose_publishing_failed_is_queued_again_and_counted_once(
    context: JobContext, runtime: WorkerRuntime, photo_ids: tuple[OwnerAuth, list[str]]
) -> None:
    owner, ids = photo_ids
    failing = _BrokerFailingOnSecondMessage()
    declare_actors(failing)
    job_id = _queue_only(context, owner.id, ids)
    assert dispatch_queued_jobs(context.sessions, failing, context.settings, "api:1:a:dispatcher") == 0
    assert _job(context, job_id).state == "queued" and _tasks(context, job_id) == []
    working = StubBroker()
    declare_actors(working)
    assert dispatch_queued_jobs(context.sessions, working, context.settings, "api:1:a:dispatcher") == 1
    assert _job(context, job_id).worker_id == "broker"
    for task in _tasks(context, job_id):
        run_task(runtime, task.id)
    job = _job(context, job_id)
    assert (job.state, job.done, job.failed) == ("succeeded", len(ids), 0)


def test_a_job_whose_dispatcher_died_mid_dispatch_is_sent_again_without_its_started_tasks(
    context: JobContext, runtime: WorkerRuntime, broker: StubBroker, photo_ids: tuple[OwnerAuth, list[str]]
) -> None:
    owner, ids = photo_ids
    job_id = _queue_only(context, owner.id, ids)
    with context.sessions() as db:
        assert claim_next_job(db, worker_id="api:2:b:dispatcher") is not None
        # It wrote its tasks, sent the first (a worker started it) and died before sending the second.
        db.add(JobTask(job_id=job_id, seq=0, queue="analysis", items=ids[:3], deliveries=1))
        db.add(JobTask(job_id=job_id, seq=1, queue="analysis", items=ids[3:]))
        db.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(minutes=6)))
        db.commit()
        assert requeue_interrupted_dispatches(db) == 1
    assert [task.seq for task in _tasks(context, job_id)] == [0]  # the started one stays
    assert dispatch_queued_jobs(context.sessions, broker, context.settings, "api:3:c:dispatcher") == 1
    tasks = _tasks(context, job_id)
    assert [(task.seq, task.items) for task in tasks] == [(0, ids[:3]), (1, ids[3:])]
    for task in tasks:
        run_task(runtime, task.id)
    job = _job(context, job_id)
    assert (job.state, job.done, job.failed) == ("succeeded", len(ids), 0)


def test_a_whole_job_on_which_workers_died_fails_instead_of_killing_more(
    context: JobContext,
    runtime: WorkerRuntime,
    broker: StubBroker,
    photo_ids: tuple[OwnerAuth, list[str]],
) -> None:
    owner, ids = photo_ids
    job_id = _queue_only(context, owner.id, ids, job_type="test-whole")
    assert dispatch_queued_jobs(context.sessions, broker, context.settings, "dispatcher") == 1
    with context.sessions() as db:
        # As two deliveries left it: each worker that took it was killed.
        db.execute(update(Job).where(Job.id == job_id).values(attempts=Job.attempts + 2))
        db.commit()
    _whole_job_runs.clear()
    run_whole_job(runtime, job_id)
    job = _job(context, job_id)
    assert (job.state, job.done, _whole_job_runs) == ("failed", 0, [])
    assert "worker died 2 times" in job.errors[-1]["error"]
