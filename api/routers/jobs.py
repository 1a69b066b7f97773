"""Jobs: long-running work (analysis, recognition, verification) with progress."""

from typing import Annotated

from fastapi import APIRouter, Query, status

import services.jobs.service as job_service
from api.deps import CurrentOwner, JobRunnerDep, SessionDep
from api.errors import problem_responses
from schemas.common import Page
from schemas.jobs import Job, JobCreate
from services.photos.service import get_photo

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

PROBLEMS = problem_responses({404: "no such job for this owner"})


@router.post("", name="create", status_code=status.HTTP_202_ACCEPTED, response_model=Job, responses=PROBLEMS)
def create_job(db: SessionDep, owner: CurrentOwner, runner: JobRunnerDep, body: JobCreate) -> Job:
    """Start a job over the given photos (default: all of the owner's photos)."""
    if body.photo_ids is not None:
        for photo_id in body.photo_ids:
            get_photo(db, owner_id=owner, photo_id=photo_id)  # another owner's id answers 404
    job = job_service.create_job(db, owner_id=owner, type=body.type, items=body.photo_ids)
    db.commit()
    if runner is not None:
        runner.wake()
    return Job.model_validate(job, from_attributes=True)


@router.get("", name="list", response_model=Page[Job], responses=PROBLEMS)
def list_jobs(
    db: SessionDep,
    owner: CurrentOwner,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,9}$", description="opaque; from next_cursor")] = None,
) -> Page[Job]:
    """The owner's jobs, newest first."""
    offset = int(cursor or 0)
    rows = job_service.list_jobs(db, owner_id=owner, limit=limit + 1, offset=offset, state=state)
    next_cursor = str(offset + limit) if len(rows) > limit else None
    return Page[Job](
        items=[Job.model_validate(r, from_attributes=True) for r in rows[:limit]], next_cursor=next_cursor
    )


@router.get("/{job_id}", name="get", response_model=Job, responses=PROBLEMS)
def get_job(db: SessionDep, owner: CurrentOwner, job_id: str) -> Job:
    """A job's state and progress."""
    return Job.model_validate(job_service.get_job(db, owner_id=owner, job_id=job_id), from_attributes=True)


@router.delete("/{job_id}", name="cancel", response_model=Job, responses=PROBLEMS)
def cancel_job(db: SessionDep, owner: CurrentOwner, job_id: str) -> Job:
    """Cancel a queued or running job; finished jobs are left as they are."""
    job = job_service.cancel_job(db, owner_id=owner, job_id=job_id)
    db.commit()
    return Job.model_validate(job, from_attributes=True)
