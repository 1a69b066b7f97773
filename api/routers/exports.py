"""Exports: zips of photos with their tags, people and face regions written into the files."""

from fastapi import APIRouter, status
from fastapi.responses import FileResponse, Response

import services.exports.service as export_service
from api.deps import CurrentOwner, JobRunnerDep, SessionDep, SettingsDep
from api.errors import problem_responses
from core.errors import Conflict, NotFound
from db.models import Export as ExportRow
from schemas.exports import Export, ExportCreate
from services.jobs.service import get_job
from services.photos.service import PhotoFilters
from services.search.service import search_photo_ids

router = APIRouter(prefix="/v1/exports", tags=["exports"])

PROBLEMS = problem_responses({404: "no such export or photo for this owner", 409: "the zip is not ready"})


def export_out(db: SessionDep, export: ExportRow) -> Export:
    job = get_job(db, owner_id=export.owner_id, job_id=export.job_id) if export.job_id else None
    state = export.state
    if job is not None and job.state in ("cancelled", "failed") and state not in ("ready", "expired"):
        state = job.state
    return Export(
        id=export.id,
        state=state,  # type: ignore[arg-type]
        job_id=export.job_id,
        total=job.total if job else len(export.entries),
        done=job.done if job else 0,
        failed=job.failed if job else 0,
        errors=(job.errors if job else [])
        + ([{"item": None, "error": export.error}] if export.error else []),
        size_bytes=export.size_bytes,
        created_at=export.created_at,
        finished_at=export.finished_at,
        expires_at=export.expires_at,
        download_url=f"/v1/exports/{export.id}/download" if state == "ready" else None,
    )


@router.post(
    "", name="create", status_code=status.HTTP_202_ACCEPTED, response_model=Export, responses=PROBLEMS
)
def create_export(db: SessionDep, owner: CurrentOwner, runner: JobRunnerDep, body: ExportCreate) -> Export:
    """Export photos chosen by id or by a search. The zip is built by a job; poll the export."""
    if body.search is None:
        photo_ids = export_service.resolve_photo_ids(
            db, owner_id=owner, photo_ids=body.photo_ids, filters=None
        )
    else:
        filters = PhotoFilters(**body.search.model_dump(exclude={"q"}))
        query = (body.search.q or "").strip()
        photo_ids = (
            search_photo_ids(db, owner_id=owner, query=query, filters=filters)
            if query
            else export_service.resolve_photo_ids(db, owner_id=owner, photo_ids=None, filters=filters)
        )
    export = export_service.create_export(
        db, owner_id=owner, photo_ids=photo_ids, request=body.model_dump(mode="json", exclude_none=True)
    )
    if runner is not None:
        runner.wake()
    return export_out(db, export)


@router.get("/{export_id}", name="get", response_model=Export, responses=PROBLEMS)
def get_export(db: SessionDep, owner: CurrentOwner, export_id: str) -> Export:
    """Progress and, once ready, the download link. Exports expire after 24 hours."""
    return export_out(db, export_service.get_export(db, owner_id=owner, export_id=export_id))


@router.get(
    "/{export_id}/download",
    name="download",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "the zip"}, **PROBLEMS},
)
def download_export(db: SessionDep, owner: CurrentOwner, settings: SettingsDep, export_id: str) -> Response:
    """The zip, streamed from disk."""
    export = export_service.get_export(db, owner_id=owner, export_id=export_id)
    if export.state == "expired":
        raise NotFound(f"export {export_id} has expired; create a new one")
    if export.state != "ready":
        raise Conflict(f"export {export_id} is {export.state}, not ready yet")
    return FileResponse(
        export_service.zip_path(settings, export.id),
        media_type="application/zip",
        filename=f"shoebox-export-{export.created_at:%Y%m%d-%H%M%S}.zip",
    )
