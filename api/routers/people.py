"""People: create, list, rename, delete, merge, and their photos."""

from fastapi import APIRouter, status
from fastapi.responses import FileResponse, Response

import services.faces.people as people_service
import services.faces.service as face_service
import services.photos.service as photo_service
from api.deps import CurrentOwner, FiltersDep, JobRunnerDep, PagingDep, SessionDep, StoreDep
from api.errors import problem_responses
from api.openapi import binary_content
from core.signing import signed_url
from db.models import Person as PersonRow
from schemas.common import Page
from schemas.faces import Person, PersonCreate, PersonMerge, PersonPatch
from schemas.photos import Photo, photo_from_view
from services.photos.service import PhotoSort
from services.photos.views import photo_views

router = APIRouter(prefix="/v1/people", tags=["people"])

PROBLEMS = problem_responses({404: "no such person for this owner", 409: "the name is taken"})


def people_out(db: SessionDep, rows: list[PersonRow]) -> list[Person]:
    stats = people_service.people_stats(db, [row.id for row in rows])
    covers = people_service.cover_faces(db, rows)
    return [
        Person(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            cover_face_id=covers[row.id],
            thumbnail_url=signed_url(f"/v1/faces/{covers[row.id]}/thumbnail") if covers[row.id] else None,
            hidden=row.hidden,
            birth_date=row.birth_date,
            **stats[row.id],
        )
        for row in rows
    ]


@router.get("", name="list", response_model=Page[Person], responses=PROBLEMS)
def list_people(
    db: SessionDep,
    owner: CurrentOwner,
    paging: PagingDep,
    include_hidden: bool = False,
) -> Page[Person]:
    """The owner's people by name, with face and photo counts and a cover face; hidden people only
    with `include_hidden=true`."""
    rows, next_cursor = people_service.list_people(
        db, owner_id=owner, limit=paging.limit, cursor=paging.cursor, include_hidden=include_hidden
    )
    return Page[Person](items=people_out(db, rows), next_cursor=next_cursor)


@router.post(
    "", name="create", status_code=status.HTTP_201_CREATED, response_model=Person, responses=PROBLEMS
)
def create_person(db: SessionDep, owner: CurrentOwner, body: PersonCreate) -> Person:
    """Create a person by name (names are unique per owner, case-insensitively)."""
    person = people_service.create_person(db, owner_id=owner, name=body.name)
    return people_out(db, [person])[0]


@router.get("/{person_id}", name="get", response_model=Person, responses=PROBLEMS)
def get_person(db: SessionDep, owner: CurrentOwner, person_id: str) -> Person:
    """One person with counts."""
    return people_out(db, [people_service.get_person(db, owner_id=owner, person_id=person_id)])[0]


@router.patch("/{person_id}", name="update", response_model=Person, responses=PROBLEMS)
def update_person(db: SessionDep, owner: CurrentOwner, person_id: str, body: PersonPatch) -> Person:
    """Rename a person (every face keeps pointing at them, so names are never lost), choose their cover
    face, hide or show them, set their birth date."""
    changes = body.model_dump(include=body.model_fields_set)
    person = people_service.update_person(db, owner_id=owner, person_id=person_id, changes=changes)
    return people_out(db, [person])[0]


@router.get(
    "/{person_id}/thumbnail",
    name="thumbnail",
    response_class=FileResponse,
    responses={200: {"content": binary_content("image/jpeg"), "description": "the cover face"}, **PROBLEMS},
)
def person_thumbnail(db: SessionDep, owner: CurrentOwner, store: StoreDep, person_id: str) -> Response:
    """A square JPEG crop of the person's cover face, 160 px (404 while they have no face)."""
    path = face_service.person_thumbnail_path(store, db, owner_id=owner, person_id=person_id)
    # The cover may change at any time: the browser revalidates (the ETag spares the bytes).
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, no-cache"})


@router.delete("/{person_id}", name="delete", status_code=status.HTTP_204_NO_CONTENT, responses=PROBLEMS)
def delete_person(db: SessionDep, owner: CurrentOwner, runner: JobRunnerDep, person_id: str) -> Response:
    """Delete a person; their faces become unnamed."""
    people_service.delete_person(db, owner_id=owner, person_id=person_id)
    if runner is not None:
        runner.wake()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{person_id}/merge", name="merge", response_model=Person, responses=PROBLEMS)
def merge_people(
    db: SessionDep, owner: CurrentOwner, runner: JobRunnerDep, person_id: str, body: PersonMerge
) -> Person:
    """Move every face of `from_ids` to this person and delete those people."""
    person = people_service.merge_people(db, owner_id=owner, person_id=person_id, from_ids=body.from_ids)
    if runner is not None:
        runner.wake()
    return people_out(db, [person])[0]


@router.get("/{person_id}/photos", name="photos", response_model=Page[Photo], responses=PROBLEMS)
def person_photos(
    db: SessionDep,
    owner: CurrentOwner,
    paging: PagingDep,
    person_id: str,
    filters: FiltersDep,
    sort: PhotoSort = "-taken_at",
) -> Page[Photo]:
    """Photos showing this person (named by a user or by the model), with the photo filters."""
    people_service.get_person(db, owner_id=owner, person_id=person_id)
    filters.people = [*filters.people, person_id]
    rows, next_cursor = photo_service.list_photos(
        db, owner_id=owner, filters=filters, sort=sort, limit=paging.limit, cursor=paging.cursor
    )
    return Page[Photo](items=[photo_from_view(v) for v in photo_views(db, rows)], next_cursor=next_cursor)
