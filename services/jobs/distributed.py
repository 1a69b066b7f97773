"""Distributed jobs on Dramatiq (RabbitMQ or Redis): the API splits a job into tasks, worker processes
on any machine run them.

The `Job` row stays the API's view of progress. A dispatcher in the API process claims queued jobs
(the same atomic claim as the local runner) and writes a job's items as `JobTask` rows of a few photos
each, then publishes one message per task to the job type's queue ("analysis" or "default"). A worker
runs a task's items through the job type's batch handler and records them in one transaction that
locks the job row, moves the task's `position` and adds to the job's `done`/`failed` counters: the
broker delivers at least once (acks late; a killed worker's messages are redelivered), the task row
makes the counting exactly once, and the handlers replace their rows (keyed by photo and model), so a
re-run never duplicates faces, tags or embeddings. A retried task runs its items one at a time; an
item on which workers died `task_max_crashes` times fails alone. The last task finishes the job.
Job types that cannot be split (exports, recognition) travel as one message that runs the whole job
with the local runner's code, resuming at the job's `position` after a crash.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.config import Settings
from db.models import Job, JobTask, WorkerStat
from db.types import utcnow
from services.jobs.service import (
    MAX_ERRORS_KEPT,
    JobContext,
    JobRunner,
    _finish,
    _rows_changed,
    claim_next_job,
    get_job_type,
    run_job,
)

log = logging.getLogger(__name__)

QUEUES = ("analysis", "default")
# Job.worker_id of a job whose tasks are on the broker; a dispatcher's own id ends in DISPATCHER_SUFFIX.
BROKER_HOLDER = "broker"
DISPATCHER_SUFFIX = "dispatcher"
# A task's handler may run for minutes on a slow CPU worker; the broker's own limit is 10 minutes.
TASK_TIME_LIMIT_MS = 6 * 3600 * 1000


def make_broker(settings: Settings) -> dramatiq.Broker:
    """The broker SHOEBOX_BROKER_URL names: amqp://... (RabbitMQ) or redis://... (Redis)."""
    url = settings.broker_url
    broker: dramatiq.Broker
    if url.startswith("redis"):
        from dramatiq.brokers.redis import RedisBroker  # the `redis` package, only for Redis deployments

        broker = RedisBroker(url=url)  # type: ignore[no-untyped-call]
    else:
        broker = RabbitmqBroker(url=url)
    declare_actors(broker, settings.broker_namespace)
    return broker


def broker_queue(namespace: str, queue: str) -> str:
    """The broker's name for one of our queues (a namespace lets several libraries share a broker)."""
    return f"{namespace}{queue}"


def delete_queues(broker_url: str, namespace: str) -> None:
    """Remove a namespace's queues from RabbitMQ (with Dramatiq's delay and dead-letter queues), e.g.
    after a test run: RabbitMQ keeps durable queues until they are deleted."""
    if not broker_url.startswith("amqp"):
        return
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        channel = connection.channel()
        for queue in QUEUES:
            for suffix in ("", ".DQ", ".XQ"):
                channel.queue_delete(queue=broker_queue(namespace, queue) + suffix)
    finally:
        connection.close()


def _task_actor_name(queue: str) -> str:
    return f"shoebox.task.{queue}"


def _job_actor_name(queue: str) -> str:
    return f"shoebox.job.{queue}"


def declare_actors(broker: dramatiq.Broker, namespace: str = "") -> None:
    """Two actors per queue: one runs a task (a few items of a job), one runs a whole job."""
    options: dict[str, Any] = {
        "max_retries": 20,
        "min_backoff": 1000,
        "max_backoff": 60_000,
        "time_limit": TASK_TIME_LIMIT_MS,
    }
    for queue in QUEUES:
        queue_name = broker_queue(namespace, queue)
        dramatiq.actor(broker=broker, actor_name=_task_actor_name(queue), queue_name=queue_name, **options)(
            _run_task_message
        )
        dramatiq.actor(broker=broker, actor_name=_job_actor_name(queue), queue_name=queue_name, **options)(
            _run_job_message
        )


# --- the API side: split queued jobs into tasks and publish them ---------------------------------


# A job still held by a dispatcher this long after its claim was cut off mid-dispatch (its API process
# died between claiming and publishing): it is dispatched again.
DISPATCH_STALE_AFTER = timedelta(minutes=5)


def dispatch_job(db: Session, broker: dramatiq.Broker, job: Job, settings: Settings) -> None:
    """A claimed (running) job becomes tasks on the broker; in the caller's session.

    Rows first, messages after their commit (a worker must find the task it is sent). The job is
    marked as on the broker only after the last message went out: until then it is the dispatcher's,
    and a dispatcher that died on the way is detected by `requeue_interrupted_dispatches`.
    """
    job_type = get_job_type(job.type)
    if job_type is None:
        _finish(db, job, "failed", extra_error={"item": None, "error": f"unknown job type {job.type}"})
        return
    dispatcher_id = job.worker_id
    if job_type.splittable and job.items:
        # Items of tasks that a worker already started (an interrupted dispatch) are not sent again.
        existing = list(
            db.execute(
                select(JobTask.seq, JobTask.items, JobTask.state, JobTask.id).where(JobTask.job_id == job.id)
            )
        )
        covered = {item for _seq, items, _state, _id in existing for item in items}
        remaining = (
            [item for item in job.items if item not in covered]
            if existing
            else list(job.items)[job.position :]
        )
        first_seq = max((seq for seq, *_rest in existing), default=-1) + 1
        size = settings.task_batch_size
        tasks = [
            JobTask(
                job_id=job.id,
                seq=first_seq + index,
                queue=job_type.queue,
                items=remaining[start : start + size],
            )
            for index, start in enumerate(range(0, len(remaining), size))
        ]
        db.add_all(tasks)
        db.commit()
        for task in tasks:
            broker.get_actor(_task_actor_name(job_type.queue)).send(task.id)
        log.info("job %s dispatched as %d tasks on queue %s", job.id, len(tasks), job_type.queue)
        if not tasks and existing and all(state != "queued" for _seq, _items, state, _id in existing):
            # Every task finished before the job was marked: a finished task's message finishes the job.
            broker.get_actor(_task_actor_name(job_type.queue)).send(existing[-1][3])
    else:
        broker.get_actor(_job_actor_name(job_type.queue)).send(job.id)
        log.info("job %s dispatched whole on queue %s", job.id, job_type.queue)
    # Conditional: a worker may already have taken a whole job over under its own id.
    db.execute(
        update(Job)
        .where(Job.id == job.id, Job.worker_id == dispatcher_id)
        .values(worker_id=BROKER_HOLDER)
        .execution_options(synchronize_session=False)
    )
    db.commit()


def _forget_unstarted_tasks(db: Session, job_id: str) -> None:
    """Tasks no worker has started are deleted (a message still on its way finds no task and is
    dropped); started ones stay and are counted when they finish."""
    db.execute(delete(JobTask).where(JobTask.job_id == job_id, JobTask.deliveries == 0))


def dispatch_queued_jobs(
    sessions: Callable[[], Session], broker: dramatiq.Broker, settings: Settings, dispatcher_id: str
) -> int:
    """Claim and dispatch every queued job; how many. A job whose publishing failed goes back to the
    queue, to be dispatched again."""
    dispatched = 0
    while True:
        with sessions() as db:
            job = claim_next_job(db, worker_id=dispatcher_id)
            if job is None:
                return dispatched
            job_id = job.id
            try:
                dispatch_job(db, broker, job, settings)
            except Exception:
                log.exception("job %s could not be dispatched; it stays queued", job_id)
                db.rollback()
                _forget_unstarted_tasks(db, job_id)
                db.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.state == "running", Job.worker_id == dispatcher_id)
                    .values(state="queued", worker_id=None, claim_token=None)
                )
                db.commit()
                return dispatched
            dispatched += 1


def requeue_interrupted_dispatches(db: Session, *, stale_after: timedelta = DISPATCH_STALE_AFTER) -> int:
    """Jobs a dispatcher claimed but never finished sending (its process died) go back to the queue."""
    cutoff = utcnow() - stale_after
    stuck = list(
        db.execute(
            select(Job.id, Job.worker_id).where(
                Job.state == "running",
                Job.worker_id.like(f"%:{DISPATCHER_SUFFIX}"),
                Job.heartbeat_at < cutoff,
            )
        )
    )
    for job_id, worker_id in stuck:
        _forget_unstarted_tasks(db, job_id)
        db.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "running", Job.worker_id == worker_id)
            .values(state="queued", worker_id=None, claim_token=None)
        )
        log.warning("job %s: its dispatcher %s died while sending it; queued again", job_id, worker_id)
    db.commit()
    return len(stuck)


class BrokerDispatcher(JobRunner):
    """Stands in for the in-process workers in distributed mode: one thread publishes queued jobs to
    the broker and runs the periodic maintenance; the work itself happens in worker processes."""

    def __init__(
        self,
        context: JobContext,
        broker: dramatiq.Broker,
        poll_seconds: float,
        maintenance: list[Callable[[JobContext], None]] | None = None,
    ) -> None:
        super().__init__(context, 1, poll_seconds, maintenance=maintenance)
        self.broker = broker

    def start(self) -> None:
        self._stop.clear()
        thread = threading.Thread(target=self._dispatch_loop, name="job-dispatcher", daemon=True)
        thread.start()
        self._threads = [thread]

    def _dispatch_loop(self) -> None:
        dispatcher_id = f"{self.worker_prefix}:{DISPATCHER_SUFFIX}"
        while not self._stop.is_set():
            self._run_maintenance()
            try:
                with self.context.sessions() as db:
                    requeue_interrupted_dispatches(db)
                dispatch_queued_jobs(self.context.sessions, self.broker, self.context.settings, dispatcher_id)
            except Exception:
                log.exception("dispatching jobs failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()


# --- the worker side -------------------------------------------------------------------------------


@dataclass
class WorkerRuntime:
    context: JobContext
    worker_id: str


_runtime: WorkerRuntime | None = None


def install_runtime(context: JobContext, *, queues: list[str]) -> WorkerRuntime:
    """This process runs tasks: its identity, and its row of figures for /metrics."""
    global _runtime
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    with context.sessions() as db:
        db.add(WorkerStat(worker_id=worker_id, queues=",".join(queues)))
        db.commit()
    _runtime = WorkerRuntime(context=context, worker_id=worker_id)
    return _runtime


def _require_runtime() -> WorkerRuntime:
    if _runtime is None:
        raise RuntimeError("this process is no worker: run `python -m services.jobs.worker`")
    return _runtime


def _run_task_message(task_id: str) -> None:
    run_task(_require_runtime(), task_id)


def _run_job_message(job_id: str) -> None:
    run_whole_job(_require_runtime(), job_id)


def run_whole_job(runtime: WorkerRuntime, job_id: str) -> None:
    """A job that is not split: take it over under a fresh claim (a worker that died with it, or
    a paused one, can no longer commit) and run it from its position. A job on which workers died
    `task_max_crashes` times fails instead of taking down the next one."""
    with runtime.context.sessions() as db:
        taken = _rows_changed(
            db,
            update(Job)
            .where(Job.id == job_id, Job.state == "running")
            .values(
                worker_id=runtime.worker_id,
                claim_token=uuid.uuid4().hex,
                heartbeat_at=utcnow(),
                attempts=Job.attempts + 1,
            )
            .execution_options(synchronize_session=False),
        )
        db.commit()
        if not taken:
            return
        job = db.get(Job, job_id, populate_existing=True)
        # One attempt is the dispatcher's claim, one this delivery's: the rest were workers that died.
        crashes = (job.attempts - 2) if job is not None else 0
        if job is not None and crashes >= runtime.context.settings.task_max_crashes:
            message = f"a worker died {crashes} times while running this job"
            _finish(db, job, "failed", extra_error={"item": None, "error": message})
            return
    run_job(runtime.context, job_id, runtime.worker_id)


def run_task(runtime: WorkerRuntime, task_id: str) -> None:
    """Run one task (a delivery of its message); safe to run again after a crash or a redelivery."""
    context = runtime.context
    with context.sessions() as db:
        task = db.get(JobTask, task_id)
        if task is None:
            return
        job = db.get(Job, task.job_id)
        if job is None or job.state != "running":
            if task.state == "queued":
                task.state = "cancelled"
                db.commit()
            return
        if task.state != "queued":
            finish_job_if_complete(context, job.id)  # the worker that finished it may have died here
            return
        started = _rows_changed(
            db,
            update(JobTask)
            .where(JobTask.id == task_id, JobTask.state == "queued")
            .values(
                deliveries=JobTask.deliveries + 1,
                deliveries_at_position=JobTask.deliveries_at_position + 1,
                worker_id=runtime.worker_id,
            )
            .execution_options(synchronize_session=False),
        )
        db.commit()
        if not started:
            return  # deleted meanwhile (its dispatch was redone) or finished by another delivery
        db.refresh(task)
        job_id, owner_id, job_type_name, params = job.id, job.owner_id, job.type, dict(job.params)
        items, position = list(task.items), task.position
        retried, crashes_here = task.deliveries > 1, task.deliveries_at_position - 1
    job_type = get_job_type(job_type_name)
    if job_type is None:
        _record(runtime, task_id, position, items[position:], {i: "unknown job type" for i in items}, 0.0)
        return
    if retried and crashes_here >= context.settings.task_max_crashes and position < len(items):
        poison = items[position]
        log.warning(
            "task %s: workers died %d times on item %s; it fails alone", task_id, crashes_here, poison
        )
        message = f"a worker died {crashes_here} times while processing this item"
        position = _record(runtime, task_id, position, [poison], {poison: message}, 0.0)
    # First delivery: the whole batch at once (the models batch across photos). A retry goes one item
    # at a time, so the item that kills workers is found and the others are kept.
    step = 1 if retried else max(1, len(items))
    while 0 <= position < len(items):
        batch = items[position : position + step]
        began = time.perf_counter()
        try:
            errors = job_type.run(context, owner_id, batch, params)
        except Exception as exc:  # a handler bug fails the batch, not the worker
            log.exception("task %s: batch at %d failed", task_id, position)
            errors = {item: f"{type(exc).__name__}: {exc}" for item in batch}
        position = _record(runtime, task_id, position, batch, errors, time.perf_counter() - began)
    finish_job_if_complete(context, job_id)


def _record(
    runtime: WorkerRuntime,
    task_id: str,
    position: int,
    batch: list[str],
    errors: dict[str, str],
    seconds: float,
) -> int:
    """Count a finished batch of a task in its job, exactly once: the task's position moves from
    `position` in the same transaction as the job's counters, under the job's row lock. Answers the
    task's next position, or -1 when the task is no longer this worker's to count (done elsewhere)."""
    with runtime.context.sessions() as db:
        job_id = db.scalar(select(JobTask.job_id).where(JobTask.id == task_id))
        job = db.get(Job, job_id, with_for_update=True, populate_existing=True) if job_id else None
        task = db.get(JobTask, task_id, with_for_update=True, populate_existing=True)
        if job is None or task is None or task.state != "queued" or task.position != position:
            return -1
        task.position = position + len(batch)
        task.deliveries_at_position = 1  # this delivery, alive at the new position
        if task.position >= len(task.items):
            task.state = "done"
            task.finished_at = utcnow()
        failed = sum(1 for item in batch if item in errors)
        job.done += len(batch) - failed
        job.failed += failed
        job.position += len(batch)
        job.heartbeat_at = utcnow()
        if errors and len(job.errors) < MAX_ERRORS_KEPT:
            job.errors = [*job.errors, *({"item": i, "error": e} for i, e in errors.items())][
                :MAX_ERRORS_KEPT
            ]
        db.execute(
            update(WorkerStat)
            .where(WorkerStat.worker_id == runtime.worker_id)
            .values(
                items_done=WorkerStat.items_done + len(batch) - failed,
                items_failed=WorkerStat.items_failed + failed,
                tasks=WorkerStat.tasks + (1 if task.state == "done" else 0),
                busy_seconds=WorkerStat.busy_seconds + seconds,
                last_seen_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        db.commit()
        log.info(
            "job %s task %s: %d/%d by %s", job.id, task_id, task.position, len(task.items), runtime.worker_id
        )
        return task.position if task.state == "queued" else len(task.items)


def finish_job_if_complete(context: JobContext, job_id: str) -> None:
    """When every task of the job is done: its finishing step, then its final state (once)."""
    with context.sessions() as db:
        job = db.get(Job, job_id)
        if job is None or job.state != "running":
            return
        open_tasks = db.scalar(
            select(func.count())
            .select_from(JobTask)
            .where(JobTask.job_id == job_id, JobTask.state == "queued")
        )
        if open_tasks:
            return
        owner_id, params, job_type = job.owner_id, dict(job.params), get_job_type(job.type)
    error: dict[str, Any] | None = None
    if job_type is not None and job_type.on_finished is not None:
        try:
            job_type.on_finished(context, owner_id, params)
        except Exception as exc:
            log.exception("job %s finishing step failed", job_id)
            error = {"item": None, "error": f"{type(exc).__name__}: {exc}"}
    with context.sessions() as db:
        job = db.get(Job, job_id, with_for_update=True)
        if job is None or job.state != "running":
            return
        if error is not None:
            _finish(db, job, "failed", extra_error=error)
        else:
            _finish(db, job, "failed" if job.total and job.failed == job.total else "succeeded")
