"""Faces: per photo, listing and review, labelling, un-assigning, clusters, crops."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response

import services.faces.service as face_service
from api.deps import CurrentOwner, JobRunnerDep, PagingDep, SessionDep, StoreDep
from api.errors import problem_responses
from db.enums import PersonSource
from db.models import Face as FaceRow
from schemas.common import Page
from schemas.faces import Face, FaceCluster, FaceClusters, FaceLabel, FaceSuggestion, PersonRef
from services.faces.service import FaceOrder

router = APIRouter(tags=["faces"])

PROBLEMS = problem_responses(
    {
        404: "no such face, photo or person for this owner",
        409: "two faces of one photo cannot be the same person",
    }
)


def face_out(face: FaceRow, names: dict[str, str]) -> Face:
    return Face(
        id=face.id,
        photo_id=face.photo_id,
        bbox=[face.box_x, face.box_y, face.box_w, face.box_h],
        landmarks=face.landmarks,
        detection_score=face.detection_score,
        person=PersonRef(id=face.person_id, name=names[face.person_id]) if face.person_id else None,
        person_source=PersonSource(face.person_source) if face.person_source else None,
        person_confidence=face.person_confidence,
        suggestion=(
            FaceSuggestion(
                person=PersonRef(id=face.suggested_person_id, name=names[face.suggested_person_id]),
                confidence=face.suggestion_confidence or 0.0,
            )
            if face.suggested_person_id and face.suggested_person_id in names
            else None
        ),
        recognisable=face.recognisable,
    )


def faces_out(db: SessionDep, faces: list[FaceRow]) -> list[Face]:
    names = face_service.person_names(
        db, [p for f in faces for p in (f.person_id, f.suggested_person_id) if p is not None]
    )
    return [face_out(face, names) for face in faces]


@router.get("/v1/photos/{photo_id}/faces", name="of_photo", response_model=Page[Face], responses=PROBLEMS)
def photo_faces(db: SessionDep, owner: CurrentOwner, photo_id: str) -> Page[Face]:
    """The faces found in a photo, left to right."""
    return Page[Face](items=faces_out(db, face_service.faces_of_photo(db, owner_id=owner, photo_id=photo_id)))


@router.get("/v1/faces", name="list", response_model=Page[Face], responses=PROBLEMS)
def list_faces(
    db: SessionDep,
    owner: CurrentOwner,
    paging: PagingDep,
    person_id: str | None = None,
    unlabeled: Annotated[bool | None, Query(description="true: faces no user has named")] = None,
    suggested: Annotated[
        bool | None, Query(description="true: faces with a suggested person to confirm (review queue)")
    ] = None,
    order: Annotated[
        FaceOrder, Query(description="confidence: least sure model names and suggestions first")
    ] = "created",
) -> Page[Face]:
    """Faces of the owner's library, filtered by person or by whether a user named them."""
    rows, next_cursor = face_service.list_faces(
        db,
        owner_id=owner,
        person_id=person_id,
        unlabeled=unlabeled,
        suggested=suggested,
        order=order,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return Page[Face](items=faces_out(db, rows), next_cursor=next_cursor)


@router.post("/v1/faces/label", name="label", response_model=Page[Face], responses=PROBLEMS)
def label_faces(db: SessionDep, owner: CurrentOwner, runner: JobRunnerDep, body: FaceLabel) -> Page[Face]:
    """Name faces as one person, by `person_id` or by `name` (created when new). Re-labelling a face
    moves it (that is how a wrongly merged person is split). Recognition re-runs afterwards."""
    face_service.label_faces(
        db, owner_id=owner, face_ids=body.face_ids, person_id=body.person_id, name=body.name
    )
    if runner is not None:
        runner.wake()  # recognition was queued with the labels
    faces = [face_service.get_face(db, owner_id=owner, face_id=face_id) for face_id in body.face_ids]
    return Page[Face](items=faces_out(db, faces))


@router.delete("/v1/faces/{face_id}/person", name="unassign", response_model=Face, responses=PROBLEMS)
def unassign_face(db: SessionDep, owner: CurrentOwner, runner: JobRunnerDep, face_id: str) -> Face:
    """ "Not this person": clear the face's person (or its suggestion). Recognition never gives the face
    that person again (it may still name it as somebody else); a face with neither stays unnamed until
    a user labels it."""
    face = face_service.unassign_face(db, owner_id=owner, face_id=face_id)
    if runner is not None:
        runner.wake()  # recognition was queued with the labels
    return faces_out(db, [face])[0]


@router.get("/v1/faces/clusters", name="clusters", response_model=FaceClusters, responses=PROBLEMS)
def face_clusters(
    db: SessionDep, owner: CurrentOwner, min_size: Annotated[int, Query(ge=2, le=100)] = 2
) -> FaceClusters:
    """Suggested groups of faces nobody named, largest first: name one with a single `faces/label` call."""
    groups = face_service.suggest_clusters(db, owner_id=owner, min_size=min_size)
    return FaceClusters(items=[FaceCluster(face_ids=group, size=len(group)) for group in groups])


@router.get(
    "/v1/faces/{face_id}/thumbnail",
    name="thumbnail",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "a square face crop"}, **PROBLEMS},
)
def face_thumbnail(db: SessionDep, owner: CurrentOwner, store: StoreDep, face_id: str) -> Response:
    """A square JPEG crop of the face with some context, 160 px."""
    path = face_service.face_crop_path(store, db, owner_id=owner, face_id=face_id)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})
