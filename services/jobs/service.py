"""Persistent background jobs: created in the database, claimed atomically, run in batches.

A job is a list of work items (photo ids) and a position. Workers commit progress after every
batch, so a job interrupted by a crash or restart is requeued and resumes where it stopped. A job
type split in two (`prepare`, e.g. analysis) has its next batch prepared while the current one is
stored; a prepared batch is only counted once stored.
Any number of processes may run workers against one database: the claim is a conditional UPDATE.

Crash recovery: a worker's heartbeat thread touches its jobs every few seconds; a running job left
untouched for `job_stale_seconds` is requeued by any worker. Every claim carries a fresh token, and
each commit made on the job's behalf first touches the job row under that token (a fence), so a
worker that was paused or cut off and lost its claim cannot write its batch afterwards.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, event, literal, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

from core.config import Settings
from core.errors import Invalid, NotFound
from core.pagination import decode_cursor, encode_cursor
from core.storage import BlobStore
from db.models import Job, Photo
from db.owned import get_owned
from db.types import utcnow
from services.inference.models import ModelSet

log = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running")
# A running job whose worker has not reported for this long is taken to be orphaned (the default
# of Settings.job_stale_seconds; workers heartbeat every job_heartbeat_seconds).
STALE_AFTER = timedelta(seconds=12)
MAX_ERRORS_KEPT = 200


class LostClaim(Exception):
    """The job was requeued or claimed by another worker: this worker's writes are refused."""


@dataclass
class JobContext:
    sessions: sessionmaker[Session]
    store: BlobStore
    settings: Settings
    models: ModelSet


# A batch handler gets the owner, a batch of item ids and the job params; it returns an error
# message for each failed item (items not in the dict succeeded).
BatchHandler = Callable[[JobContext, str, list[str], dict[str, Any]], dict[str, str]]
# A batch split in two: the preparer does the slow part (reading, decoding, the models) and returns the
# step that stores its outcome, which returns the handler's errors.
StoreStep = Callable[[], dict[str, str]]
BatchPreparer = Callable[[JobContext, str, list[str], dict[str, Any]], StoreStep]


@dataclass
class JobType:
    name: str
    # Exactly one of handler and prepare (below) is set.
    handler: BatchHandler | None
    batch_size: Callable[[Settings], int] = field(default=lambda settings: 1)
    # Items to use when the client names none (e.g. every photo of the owner).
    default_items: Callable[[Session, str], list[str]] | None = None
    # Runs once after the last item (e.g. retrain a classifier); may enqueue follow-up work.
    on_finished: Callable[[JobContext, str, dict[str, Any]], None] | None = None
    # Distributed mode: the broker queue its tasks go to (a GPU worker takes "analysis"), and whether
    # the job may be split into independent tasks (items handled in any order, on any worker).
    queue: str = "default"
    splittable: bool = False
    # A batch split in two instead of a handler: the local runner prepares the next batch while it
    # stores the current one (Settings.job_read_ahead), so the models do not wait for the writes.
    prepare: BatchPreparer | None = None

    def __post_init__(self) -> None:
        if (self.handler is None) == (self.prepare is None):
            raise ValueError(f"job type {self.name!r} needs a handler or a preparer, not both")

    def prepared(
        self, context: JobContext, owner_id: str, batch: list[str], params: dict[str, Any]
    ) -> StoreStep:
        """The batch prepared; for a job type not split in two, one step that does all of it."""
        if self.prepare is not None:
            return self.prepare(context, owner_id, batch, params)
        handler = cast(BatchHandler, self.handler)
        return lambda: handler(context, owner_id, batch, params)

    def run(
        self, context: JobContext, owner_id: str, batch: list[str], params: dict[str, Any]
    ) -> dict[str, str]:
        """Handle one batch in full; the item ids that failed, with their errors."""
        return self.prepared(context, owner_id, batch, params)()


_job_types: dict[str, JobType] = {}


def register_job_type(job_type: JobType) -> None:
    _job_types[job_type.name] = job_type


def get_job_type(name: str) -> JobType | None:
    return _job_types.get(name)


def job_type_names() -> list[str]:
    return sorted(_job_types)


def _rows_changed(db: Session, statement: Executable) -> int:
    """How many rows an UPDATE changed (SQLAlchemy types `execute` as a plain Result)."""
    return cast(CursorResult[Any], db.execute(statement)).rowcount or 0


def create_job(
    db: Session,
    *,
    owner_id: str,
    type: str,
    items: list[str] | None = None,
    params: dict[str, Any] | None = None,
) -> Job:
    job_type = _job_types.get(type)
    if job_type is None:
        raise Invalid(f"unknown job type {type!r}; known: {', '.join(job_type_names())}")
    if items is None:
        items = job_type.default_items(db, owner_id) if job_type.default_items else []
    items = list(dict.fromkeys(items))  # unique, order kept
    job = Job(owner_id=owner_id, type=type, items=items, params=params or {}, total=len(items))
    db.add(job)
    db.flush()
    log.info("job %s created: %s for owner %s, %d items", job.id, type, owner_id, len(items))
    return job


def ensure_queued_job(db: Session, *, owner_id: str, type: str) -> Job:
    """One queued job of this type per owner is enough for work that reads its input when it runs
    (recognition reads the labels then); in the caller's transaction."""
    queued = db.scalar(
        select(Job).where(Job.owner_id == owner_id, Job.type == type, Job.state == "queued").limit(1)
    )
    return queued if queued is not None else create_job(db, owner_id=owner_id, type=type)


def add_to_queued_job(db: Session, *, owner_id: str, type: str, items: list[str]) -> Job:
    """Append items to the owner's queued job of this type, else create one: a client uploading one
    file per request still gets its photos analysed in full batches."""
    queued = db.scalars(
        select(Job)
        .where(Job.owner_id == owner_id, Job.type == type, Job.state == "queued")
        .order_by(Job.created_at.desc())
        .limit(1)
    ).first()
    if queued is not None:
        merged = list(dict.fromkeys([*queued.items, *items]))
        # Only while still queued and unchanged: a worker may claim it, or another request extend it.
        extended = _rows_changed(
            db,
            update(Job)
            .where(Job.id == queued.id, Job.state == "queued", Job.total == queued.total)
            .values(items=merged, total=len(merged))
            .execution_options(synchronize_session=False),
        )
        if extended == 1:
            db.expire(queued)
            return queued
    return create_job(db, owner_id=owner_id, type=type, items=items)


def get_job(db: Session, *, owner_id: str, job_id: str) -> Job:
    return get_owned(db, Job, owner_id=owner_id, row_id=job_id, what="job")


def list_jobs(
    db: Session, *, owner_id: str, limit: int, cursor: str | None = None, state: str | None = None
) -> tuple[list[Job], str | None]:
    """The owner's jobs, newest first, keyset-paged."""
    query = select(Job).where(Job.owner_id == owner_id)
    if state:
        query = query.where(Job.state == state)
    if cursor:
        created, last_id = decode_cursor(cursor, (datetime, str))
        bound = literal(created, type_=Job.created_at.type)
        query = query.where(or_(Job.created_at < bound, and_(Job.created_at == bound, Job.id < last_id)))
    rows = list(db.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor([last.created_at.isoformat(), last.id])


def start_job(db: Session, *, owner_id: str, type: str, photo_ids: list[str] | None) -> Job:
    """A client's job over its photos (default: all of them); another owner's id answers 404."""
    if photo_ids is not None:
        wanted = list(dict.fromkeys(photo_ids))
        owned = set(db.scalars(select(Photo.id).where(Photo.owner_id == owner_id, Photo.id.in_(wanted))))
        missing = [photo_id for photo_id in wanted if photo_id not in owned]
        if missing:
            raise NotFound(f"no photo {missing[0]} for this owner", errors=[{"photo_id": p} for p in missing])
    job = create_job(db, owner_id=owner_id, type=type, items=photo_ids)
    db.commit()
    return job


def cancel_job(db: Session, *, owner_id: str, job_id: str) -> Job:
    job = get_job(db, owner_id=owner_id, job_id=job_id)
    if job.state in ACTIVE_STATES:
        job.state = "cancelled"
        job.finished_at = utcnow()
        db.commit()
    return job


def requeue_stale_jobs(db: Session, *, stale_after: timedelta = STALE_AFTER) -> int:
    """Running jobs whose worker went silent go back to the queue; they resume at `position`."""
    cutoff = utcnow() - stale_after
    result = _rows_changed(
        db,
        update(Job)
        .where(Job.state == "running", Job.heartbeat_at < cutoff)
        .values(state="queued", worker_id=None, claim_token=None)
        .execution_options(synchronize_session=False),
    )
    return result


def requeue_jobs_of_dead_local_workers(db: Session, *, own_prefix: str) -> int:
    """At start-up: running jobs held by workers of this host whose process is gone go back to the
    queue at once, without waiting for their heartbeat to go stale (a restart reclaims its work).
    Worker ids are `host:pid:nonce`; a live pid with another nonce is this pid reused (containers)."""
    host, pid, _nonce = own_prefix.split(":", 2)
    running = db.execute(
        select(Job.id, Job.worker_id).where(Job.state == "running", Job.worker_id.like(f"{host}:%"))
    ).all()
    dead = [
        job_id
        for job_id, worker_id in running
        if worker_id and not _local_worker_alive(worker_id, own_prefix=own_prefix, own_pid=pid)
    ]
    if not dead:
        return 0
    return _rows_changed(
        db,
        update(Job)
        .where(Job.id.in_(dead), Job.state == "running")
        .values(state="queued", worker_id=None, claim_token=None)
        .execution_options(synchronize_session=False),
    )


def _local_worker_alive(worker_id: str, *, own_prefix: str, own_pid: str) -> bool:
    parts = worker_id.split(":")
    if len(parts) < 3 or not parts[1].isdigit():
        return True  # not one of ours: leave it to the heartbeat
    if parts[1] == own_pid:
        return worker_id.startswith(own_prefix + ":")
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _claim_condition(job_id: str, worker_id: str, claim_token: str | None) -> ColumnElement[bool]:
    token = Job.claim_token.is_(None) if claim_token is None else Job.claim_token == claim_token
    return (Job.id == job_id) & (Job.worker_id == worker_id) & token


def touch_claim(db: Session, *, job_id: str, worker_id: str, claim_token: str | None) -> bool:
    """Heartbeat under the claim; False when the claim is gone (requeued or taken over)."""
    touched = _rows_changed(
        db,
        update(Job)
        .where(_claim_condition(job_id, worker_id, claim_token))
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False),
    )
    return touched == 1


def fenced_sessions(
    sessions: sessionmaker[Session], *, job_id: str, worker_id: str, claim_token: str | None
) -> sessionmaker[Session]:
    """Sessions whose every commit first touches the job row under this claim, or raises LostClaim.

    The touch is a write in the same transaction: on PostgreSQL it row-locks the job, so a requeue
    waits for this commit (and then sees a fresh heartbeat); on SQLite it takes the database write
    lock. Either way the check and the batch's writes commit together or not at all.
    """
    fenced = sessionmaker(bind=sessions.kw.get("bind"), expire_on_commit=False)

    def fence(session: Session) -> None:
        if not touch_claim(session, job_id=job_id, worker_id=worker_id, claim_token=claim_token):
            raise LostClaim(f"job {job_id}: the claim of {worker_id} is gone")

    event.listen(fenced, "before_commit", fence)
    return fenced


def claim_next_job(db: Session, *, worker_id: str) -> Job | None:
    """Atomically move the oldest queued job to running for this worker, under a fresh claim token."""
    candidates = db.scalars(
        select(Job.id).where(Job.state == "queued").order_by(Job.created_at, Job.id).limit(5)
    ).all()
    for job_id in candidates:
        now = utcnow()
        claimed = _rows_changed(
            db,
            update(Job)
            .where(Job.id == job_id, Job.state == "queued")
            .values(
                state="running",
                worker_id=worker_id,
                claim_token=uuid.uuid4().hex,
                heartbeat_at=now,
                attempts=Job.attempts + 1,
            )
            .execution_options(synchronize_session=False),
        )
        db.commit()
        if claimed == 1:
            job = db.get(Job, job_id, populate_existing=True)
            if job is not None and job.started_at is None:
                job.started_at = now
                db.commit()
            return job
    return None


def run_job(
    context: JobContext,
    job_id: str,
    worker_id: str,
    should_stop: Callable[[], bool] = lambda: False,
    claim_lost: Callable[[], bool] = lambda: False,
) -> None:
    """Process a claimed job batch by batch, committing progress after each batch.

    When the process is shutting down (`should_stop`), the job is handed back to the queue between
    batches, so another process (or this one, restarted) resumes it at once. Every commit, the
    handler's included, is fenced by the claim the job had when this run started.
    """
    with context.sessions() as db:
        job = db.get(Job, job_id)
        if job is None:
            return
        job_type = _job_types.get(job.type)
        owner_id, items, params = job.owner_id, list(job.items), dict(job.params)
        position, claim_token = job.position, job.claim_token
        if job_type is None:
            _finish(db, job, "failed", extra_error={"item": None, "error": f"unknown job type {job.type}"})
            return
    fenced = replace(
        context,
        sessions=fenced_sessions(
            context.sessions, job_id=job_id, worker_id=worker_id, claim_token=claim_token
        ),
    )
    try:
        _run_batches(
            fenced,
            job_type,
            job_id,
            worker_id,
            owner_id,
            items,
            params,
            position,
            should_stop,
            claim_lost,
            context.sessions,
            claim_token,
        )
    except LostClaim:
        log.warning("job %s: %s lost its claim; its unfinished batch is dropped", job_id, worker_id)


def _run_batches(
    context: JobContext,
    job_type: JobType,
    job_id: str,
    worker_id: str,
    owner_id: str,
    items: list[str],
    params: dict[str, Any],
    position: int,
    should_stop: Callable[[], bool],
    claim_lost: Callable[[], bool],
    unfenced_sessions: sessionmaker[Session],
    claim_token: str | None,
) -> None:
    batch_size = max(1, job_type.batch_size(context.settings))
    prepare = job_type.prepare if context.settings.job_read_ahead else None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="job-read-ahead") as ahead:
        upcoming: Future[StoreStep] | None = None
        while position < len(items):
            batch = items[position : position + batch_size]
            if upcoming is None:
                if claim_lost():
                    raise LostClaim(job_id)
                if should_stop():
                    _hand_back(unfenced_sessions, job_id, worker_id, claim_token)
                    log.info("job %s handed back to the queue at %d/%d", job_id, position, len(items))
                    return
                prepare_now = partial(job_type.prepared, context, owner_id, batch, params)
                store = _ready_store(prepare_now, batch, job_id, position)
            else:
                store, upcoming = _ready_store(upcoming.result, batch, job_id, position), None
            following = items[position + len(batch) : position + len(batch) + batch_size]
            if following and prepare is not None and not claim_lost() and not should_stop():
                upcoming = ahead.submit(prepare, context, owner_id, following, params)
            errors = _run_store(store, batch, job_id, position)
            if not _record_progress(context, job_id, worker_id, batch, position + len(batch), errors):
                return  # a batch read ahead is dropped unstored (its items were never counted)
            position += len(batch)
            log.info("job %s progress %d/%d", job_id, position, len(items))
    if job_type.on_finished is not None:
        try:
            job_type.on_finished(context, owner_id, params)
        except LostClaim:
            raise
        except Exception as exc:
            log.exception("job %s finishing step failed", job_id)
            with context.sessions() as db:
                job = db.get(Job, job_id)
                if job is not None:
                    _finish(
                        db, job, "failed", extra_error={"item": None, "error": f"{type(exc).__name__}: {exc}"}
                    )
            return
    with context.sessions() as db:
        job = db.get(Job, job_id)
        if job is not None and job.state == "running":
            # Partial failures are listed in `errors`; the job fails only when nothing succeeded.
            _finish(db, job, "failed" if job.total and job.failed == job.total else "succeeded")


def _failed(batch: list[str], job_id: str, position: int, exc: Exception) -> dict[str, str]:
    # A handler bug fails the batch, not the worker.
    log.error("job %s batch at %d failed", job_id, position, exc_info=exc)
    return {item: f"{type(exc).__name__}: {exc}" for item in batch}


def _ready_store(make: Callable[[], StoreStep], batch: list[str], job_id: str, position: int) -> StoreStep:
    """make()'s store step, or when preparing failed, a step that reports it for every item."""
    try:
        return make()
    except LostClaim:
        raise
    except Exception as exc:
        errors = _failed(batch, job_id, position, exc)
        return lambda: errors


def _run_store(store: StoreStep, batch: list[str], job_id: str, position: int) -> dict[str, str]:
    try:
        return store()
    except LostClaim:
        raise
    except Exception as exc:
        return _failed(batch, job_id, position, exc)


def _hand_back(
    unfenced_sessions: sessionmaker[Session], job_id: str, worker_id: str, claim_token: str | None
) -> None:
    # Unfenced: this write gives the claim up itself, under the same claim condition.
    with unfenced_sessions() as db:
        db.execute(
            update(Job)
            .where(_claim_condition(job_id, worker_id, claim_token), Job.state == "running")
            .values(state="queued", worker_id=None, claim_token=None)
        )
        db.commit()


def _record_progress(
    context: JobContext, job_id: str, worker_id: str, batch: list[str], position: int, errors: dict[str, str]
) -> bool:
    """Count the batch on the job, now at `position`; False when the job stopped (cancelled, deleted,
    taken over)."""
    with context.sessions() as db:
        job = db.get(Job, job_id)
        if job is None or job.state != "running" or job.worker_id != worker_id:
            log.info("job %s stopped (state %s)", job_id, job.state if job else "deleted")
            return False
        job.position = position
        job.failed += len(errors)
        job.done += len(batch) - len(errors)
        if errors and len(job.errors) < MAX_ERRORS_KEPT:
            job.errors = [*job.errors, *({"item": i, "error": e} for i, e in errors.items())][
                :MAX_ERRORS_KEPT
            ]
        job.heartbeat_at = utcnow()
        db.commit()
    return True


def _finish(db: Session, job: Job, state: str, extra_error: dict[str, Any] | None = None) -> None:
    job.state = state
    job.finished_at = utcnow()
    if extra_error:
        job.errors = [*job.errors, extra_error]
    db.commit()
    log.info("job %s %s: %d done, %d failed", job.id, state, job.done, job.failed)


@dataclass
class _HeldClaim:
    worker_id: str
    claim_token: str | None
    lost: threading.Event = field(default_factory=threading.Event)


class JobRunner:
    """In-process worker threads polling the database for queued jobs, plus one heartbeat thread
    that keeps their claims alive while a long batch runs."""

    def __init__(
        self,
        context: JobContext,
        workers: int,
        poll_seconds: float,
        maintenance: list[Callable[[JobContext], None]] | None = None,
        maintenance_every_seconds: float = 300.0,
    ) -> None:
        self.context = context
        self.maintenance = maintenance or []
        self.maintenance_every_seconds = maintenance_every_seconds
        self._last_maintenance = 0.0
        self.workers = workers
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = context.settings.job_heartbeat_seconds
        self.stale_after = timedelta(seconds=context.settings.job_stale_seconds)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._held: dict[str, _HeldClaim] = {}
        self._held_lock = threading.Lock()
        self.worker_prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def start(self) -> None:
        """Start the workers (again, after a stop)."""
        self._stop.clear()
        self._threads = []
        with self.context.sessions() as db:
            reclaimed = requeue_jobs_of_dead_local_workers(db, own_prefix=self.worker_prefix)
            requeued = requeue_stale_jobs(db, stale_after=self.stale_after)
            db.commit()
        if reclaimed or requeued:
            log.info("requeued %d jobs of dead local workers and %d orphaned jobs", reclaimed, requeued)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="job-heartbeat", daemon=True)
        heartbeat.start()
        self._threads.append(heartbeat)
        for index in range(self.workers):
            thread = threading.Thread(target=self._loop, args=(f"{self.worker_prefix}:{index}",), daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 120.0) -> None:
        """Finish the batch in hand, hand unfinished jobs back, and wait for the threads."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def _run_maintenance(self) -> None:
        """Housekeeping (e.g. expired exports) on the first worker, every few minutes."""
        now = time.monotonic()
        if now - self._last_maintenance < self.maintenance_every_seconds:
            return
        self._last_maintenance = now
        for task in self.maintenance:
            try:
                task(self.context)
            except Exception:
                log.exception("maintenance task %s failed", getattr(task, "__name__", task))

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            with self._held_lock:
                held = list(self._held.items())
            for job_id, claim in held:
                try:
                    with self.context.sessions() as db:
                        alive = touch_claim(
                            db, job_id=job_id, worker_id=claim.worker_id, claim_token=claim.claim_token
                        )
                        db.commit()
                except Exception:
                    log.exception("heartbeat of job %s failed", job_id)
                    continue
                if not alive:
                    claim.lost.set()

    def _loop(self, worker_id: str) -> None:
        first_worker = worker_id.endswith(":0")
        while not self._stop.is_set():
            if first_worker:
                self._run_maintenance()
            try:
                with self.context.sessions() as db:
                    requeue_stale_jobs(db, stale_after=self.stale_after)
                    db.commit()
                    job = claim_next_job(db, worker_id=worker_id)
                    claimed = (job.id, job.claim_token) if job else None
                if claimed is not None:
                    job_id, claim_token = claimed
                    claim = _HeldClaim(worker_id=worker_id, claim_token=claim_token)
                    with self._held_lock:
                        self._held[job_id] = claim
                    try:
                        run_job(
                            self.context,
                            job_id,
                            worker_id,
                            should_stop=self._stop.is_set,
                            claim_lost=claim.lost.is_set,
                        )
                    finally:
                        with self._held_lock:
                            self._held.pop(job_id, None)
                    continue
            except Exception:
                log.exception("job worker %s error", worker_id)
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
