"""Prometheus metrics in the text exposition format: request counters kept in-process, library
figures read from the database at scrape time (so every API process reports the same library)."""

import threading
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Face, Job, Photo

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
    return "\n".join(lines) + "\n"
