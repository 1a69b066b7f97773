"""Exports: zips of photos with their tags, people and face regions written into the files."""

from fastapi import APIRouter, status
from fastapi.responses import FileResponse, Response

import services.exports.service as export_service
from api.deps import CurrentOwner, JobRunnerDep, ModelsDep, PagingDep, SessionDep, SettingsDep
from api.errors import problem_responses
from api.openapi import binary_content
from db.enums import ExportState
from db.models import Export as ExportRow
from schemas.common import Page
from schemas.exports import Export, ExportCreate

router = APIRouter(prefix="/v1/exports", tags=["exports"])

PROBLEMS = problem_responses({404: "no such export or photo for this owner", 409: "the zip is not ready"})


def export_out(db: SessionDep, export: ExportRow) -> Export:
    progress = export_service.export_progress(db, export)
    return Export(
        id=export.id,
        state=ExportState(progress.state),
        job_id=export.job_id,
        total=progress.total,
        done=progress.done,
        failed=progress.failed,
        errors=progress.errors,
        size_bytes=export.size_bytes,
        created_at=export.created_at,
        finished_at=export.finished_at,
        expires_at=export.expires_at,
        download_url=f"/v1/exports/{export.id}/download" if progress.state == "ready" else None,
        search=export_service.export_search(export),
    )


@router.post(
    "", name="create", status_code=status.HTTP_202_ACCEPTED, response_model=Export, responses=PROBLEMS
)
def create_export(
    db: SessionDep, models: ModelsDep, owner: CurrentOwner, runner: JobRunnerDep, body: ExportCreate
) -> Export:
    """Export photos chosen by id or by a search. The zip is built by a job; poll the export."""
    export = export_service.start_export(
        db,
        models,
        owner_id=owner,
        photo_ids=body.photo_ids,
        filters=body.search.filters() if body.search else None,
        query=body.search.q if body.search else None,
        request=body.model_dump(mode="json", exclude_none=True),
    )
    if runner is not None:
        runner.wake()
    return export_out(db, export)


@router.get("", name="list", response_model=Page[Export], responses=PROBLEMS)
def list_exports(db: SessionDep, owner: CurrentOwner, paging: PagingDep) -> Page[Export]:
    """The owner's exports, newest first, each with its state, progress and download link."""
    rows, next_cursor = export_service.list_exports(
        db, owner_id=owner, limit=paging.limit, cursor=paging.cursor
    )
    return Page[Export](items=[export_out(db, row) for row in rows], next_cursor=next_cursor)


@router.get("/{export_id}", name="get", response_model=Export, responses=PROBLEMS)
def get_export(db: SessionDep, owner: CurrentOwner, export_id: str) -> Export:
    """Progress and, once ready, the download link. Exports expire after 24 hours."""
    return export_out(db, export_service.get_export(db, owner_id=owner, export_id=export_id))


@router.get(
    "/{export_id}/download",
    name="download",
    response_class=FileResponse,
    responses={200: {"content": binary_content("application/zip"), "description": "the zip"}, **PROBLEMS},
)
def download_export(db: SessionDep, owner: CurrentOwner, settings: SettingsDep, export_id: str) -> Response:
    """The zip, streamed from disk."""
    path, filename = export_service.ready_zip(db, settings, owner_id=owner, export_id=export_id)
    return FileResponse(path, media_type="application/zip", filename=filename)
