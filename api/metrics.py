"""Prometheus metrics in the text exposition format: request counters kept in-process, library
figures read from the database at scrape time (so every API process reports the same library)."""

import threading
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Face, Job, JobTask, Photo, WorkerStat

_lock = threading.Lock()
_requests: Counter[tuple[str, str, int]] = Counter()
_durations: dict[tuple[str, str], list[float]] = {}


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    with _lock:
        _requests[(method, route, status)] += 1
        total = _durations.setdefault((method, route), [0.0, 0.0])
        total[0] += seconds
        total[1] += 1


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(db: Session, *, include_library: bool) -> str:
    """Request counters always; library figures (photos, faces, jobs of every owner) only for a
    caller that showed the metrics token."""
    lines = [
        "# HELP shoebox_http_requests_total HTTP requests by method, route and status.",
        "# TYPE shoebox_http_requests_total counter",
    ]
    with _lock:
        requests = sorted(_requests.items())
        durations = sorted(_durations.items())
    for (method, route, status), count in requests:
        labels = f'method="{method}",route="{_escape(route)}",status="{status}"'
        lines.append(f"shoebox_http_requests_total{{{labels}}} {count}")
    lines += [
        "# HELP shoebox_http_request_duration_seconds Time spent answering requests.",
        "# TYPE shoebox_http_request_duration_seconds summary",
    ]
    for (method, route), (seconds, calls) in durations:
        labels = f'method="{method}",route="{_escape(route)}"'
        lines.append(f"shoebox_http_request_duration_seconds_sum{{{labels}}} {seconds:.6f}")
        lines.append(f"shoebox_http_request_duration_seconds_count{{{labels}}} {int(calls)}")
    if not include_library:
        return "\n".join(lines) + "\n"
    lines += ["# HELP shoebox_photos Photos in the library by analysis state.", "# TYPE shoebox_photos gauge"]
    for state, count in db.execute(select(Photo.analysis_state, func.count()).group_by(Photo.analysis_state)):
        lines.append(f'shoebox_photos{{analysis_state="{state}"}} {count}')
    lines += ["# HELP shoebox_faces Detected faces.", "# TYPE shoebox_faces gauge"]
    lines.append(f"shoebox_faces {db.scalar(select(func.count()).select_from(Face)) or 0}")
    lines += ["# HELP shoebox_jobs Jobs by type and state.", "# TYPE shoebox_jobs gauge"]
    for job_type, state, count in db.execute(
        select(Job.type, Job.state, func.count()).group_by(Job.type, Job.state)
    ):
        lines.append(f'shoebox_jobs{{type="{job_type}",state="{state}"}} {count}')
    lines += _queue_lines(db)
    return "\n".join(lines) + "\n"


def _queue_lines(db: Session) -> list[str]:
    """Queue depth (job items not yet processed, by job type; distributed tasks waiting, by queue) and
    what each distributed worker process has done (rate() of the counters is its throughput)."""
    lines = [
        "# HELP shoebox_job_items_waiting Items of queued and running jobs not processed yet, by type.",
        "# TYPE shoebox_job_items_waiting gauge",
    ]
    waiting = db.execute(
        select(Job.type, func.sum(Job.total - Job.done - Job.failed))
        .where(Job.state.in_(("queued", "running")))
        .group_by(Job.type)
    )
    for job_type, count in waiting:
        lines.append(f'shoebox_job_items_waiting{{type="{_escape(job_type)}"}} {int(count or 0)}')
    lines += [
        "# HELP shoebox_queue_tasks Distributed tasks on the broker or in a worker's hands, by queue.",
        "# TYPE shoebox_queue_tasks gauge",
    ]
    tasks: dict[str, tuple[int, int]] = {}
    for queue, items, position in db.execute(
        select(JobTask.queue, JobTask.items, JobTask.position).where(JobTask.state == "queued")
    ):
        count, left = tasks.get(queue, (0, 0))
        tasks[queue] = (count + 1, left + len(items) - position)
    for queue, (count, _left) in sorted(tasks.items()):
        lines.append(f'shoebox_queue_tasks{{queue="{_escape(queue)}"}} {count}')
    lines += [
        "# HELP shoebox_queue_items Items (photos) held by those tasks, by queue.",
        "# TYPE shoebox_queue_items gauge",
    ]
    for queue, (_count, left) in sorted(tasks.items()):
        lines.append(f'shoebox_queue_items{{queue="{_escape(queue)}"}} {left}')
    workers = list(db.scalars(select(WorkerStat).order_by(WorkerStat.worker_id)))
    lines += [
        "# HELP shoebox_worker_items_total Items processed by each distributed worker process.",
        "# TYPE shoebox_worker_items_total counter",
    ]
    for worker in workers:
        labels = f'worker="{_escape(worker.worker_id)}",queues="{_escape(worker.queues)}"'
        lines.append(f'shoebox_worker_items_total{{{labels},result="done"}} {worker.items_done}')
        lines.append(f'shoebox_worker_items_total{{{labels},result="failed"}} {worker.items_failed}')
    lines += [
        "# HELP shoebox_worker_busy_seconds_total Time each worker process spent in task handlers.",
        "# TYPE shoebox_worker_busy_seconds_total counter",
    ]
    for worker in workers:
        label = _escape(worker.worker_id)
        lines.append(f'shoebox_worker_busy_seconds_total{{worker="{label}"}} {worker.busy_seconds:.3f}')
    lines += [
        "# HELP shoebox_worker_items_per_second Items per busy second of each worker process.",
        "# TYPE shoebox_worker_items_per_second gauge",
    ]
    for worker in workers:
        rate = (worker.items_done + worker.items_failed) / worker.busy_seconds if worker.busy_seconds else 0.0
        lines.append(f'shoebox_worker_items_per_second{{worker="{_escape(worker.worker_id)}"}} {rate:.4f}')
    return lines
