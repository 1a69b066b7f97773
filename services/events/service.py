"""What changed for an owner since the last look: job progress and analysed photos, read from the
database, so every API process can serve the event stream whichever process or worker did the work.

Each poll is two small indexed queries per connected client: the owner's unfinished (or just finished)
jobs, and photos analysed since the last analysis time seen.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from db.models import Job, Photo, PhotoAnalysis
from db.types import utcnow

ACTIVE_JOB_STATES = ("queued", "running")
# Work that finished just before a client connected is still news to it (it connects after uploading),
# and rows committed slightly out of order by concurrent workers are not missed.
LOOK_BACK = timedelta(seconds=5)


@dataclass(frozen=True)
class Event:
    kind: str  # "job" or "photo.analysed"
    data: dict[str, Any]


def _job_data(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "type": job.type,
        "state": job.state,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


@dataclass
class EventCursor:
    """One client's position: what it was last told about each job, and the newest analysis it saw."""

    owner_id: str
    started_at: datetime = field(default_factory=utcnow)
    jobs_seen: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    analysed_since: datetime | None = None
    photos_told: set[tuple[str, datetime]] = field(default_factory=set)

    def poll(self, db: Session) -> list[Event]:
        events = self._job_events(db)
        events.extend(self._photo_events(db))
        return events

    def _job_events(self, db: Session) -> list[Event]:
        jobs = db.scalars(
            select(Job)
            .where(
                Job.owner_id == self.owner_id,
                or_(Job.state.in_(ACTIVE_JOB_STATES), Job.finished_at >= self.started_at - LOOK_BACK),
            )
            .order_by(Job.created_at)
        ).all()
        events = []
        for job in jobs:
            snapshot = (job.state, job.done, job.failed)
            if self.jobs_seen.get(job.id) != snapshot:
                self.jobs_seen[job.id] = snapshot
                events.append(Event("job", _job_data(job)))
        return events

    def _photo_events(self, db: Session) -> list[Event]:
        # Look back a little (see LOOK_BACK), never telling one analysis twice.
        since = (self.analysed_since or self.started_at) - LOOK_BACK
        rows = db.execute(
            select(Photo.id, Photo.analysis_state, PhotoAnalysis.analysed_at)
            .join(PhotoAnalysis, PhotoAnalysis.photo_id == Photo.id)
            .where(Photo.owner_id == self.owner_id, PhotoAnalysis.analysed_at >= since)
            .order_by(PhotoAnalysis.analysed_at)
        ).all()
        events = []
        for photo_id, state, analysed_at in rows:
            if (photo_id, analysed_at) in self.photos_told:
                continue
            self.photos_told.add((photo_id, analysed_at))
            self.analysed_since = max(self.analysed_since or analysed_at, analysed_at)
            events.append(
                Event(
                    "photo.analysed",
                    {"photo_id": photo_id, "analysis_state": state, "analysed_at": analysed_at.isoformat()},
                )
            )
        # Forget what is older than the look-back window, so a long-lived stream stays small.
        if self.analysed_since is not None:
            horizon = self.analysed_since - timedelta(seconds=10)
            self.photos_told = {told for told in self.photos_told if told[1] >= horizon}
        return events
