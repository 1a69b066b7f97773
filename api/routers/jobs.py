"""Jobs: long-running work (analysis, recognition, verification) with progress."""

from fastapi import APIRouter, status

import services.jobs.service as job_service
from api.deps import CurrentOwner, JobRunnerDep, PagingDep, SessionDep
from api.errors import problem_responses
from db.enums import JobState
from schemas.common import Page
from schemas.jobs import Job, JobCreate

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

PROBLEMS = problem_responses({404: "no such job for this owner"})


@router.post("", name="create", status_code=status.HTTP_202_ACCEPTED, response_model=Job, responses=PROBLEMS)
def create_job(db: SessionDep, owner: CurrentOwner, runner: JobRunnerDep, body: JobCreate) -> Job:
    """Start a job over the given photos (default: all of the owner's photos)."""
    job = job_service.start_job(db, owner_id=owner, type=body.type, photo_ids=body.photo_ids)
    if runner is not None:
        runner.wake()
    return Job.model_validate(job, from_attributes=True)


@router.get("", name="list", response_model=Page[Job], responses=PROBLEMS)
def list_jobs(
    db: SessionDep,
    owner: CurrentOwner,
    paging: PagingDep,
    state: JobState | None = None,
) -> Page[Job]:
    """The owner's jobs, newest first."""
    rows, next_cursor = job_service.list_jobs(
        db, owner_id=owner, limit=paging.limit, cursor=paging.cursor, state=state
    )
    return Page[Job](
        items=[Job.model_validate(r, from_attributes=True) for r in rows], next_cursor=next_cursor
    )


@router.get("/{job_id}", name="get", response_model=Job, responses=PROBLEMS)
def get_job(db: SessionDep, owner: CurrentOwner, job_id: str) -> Job:
    """A job's state and progress."""
    return Job.model_validate(job_service.get_job(db, owner_id=owner, job_id=job_id), from_attributes=True)


@router.delete("/{job_id}", name="cancel", response_model=Job, responses=PROBLEMS)
def cancel_job(db: SessionDep, owner: CurrentOwner, job_id: str) -> Job:
    """Cancel a queued or running job; finished jobs are left as they are."""
    job = job_service.cancel_job(db, owner_id=owner, job_id=job_id)
    return Job.model_validate(job, from_attributes=True)
