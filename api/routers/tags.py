"""Tags: user tags, confirming or rejecting model tags, the vocabulary and the review queue."""

from fastapi import APIRouter, status
from fastapi.responses import Response

import services.tagging.service as tag_service
from api.deps import CurrentOwner, PagingDep, SessionDep
from api.errors import problem_responses
from db.enums import TagKind
from schemas.common import Page
from schemas.photos import Photo, Tag, photo_from_view
from schemas.tags import ReviewItem, TagCount, TagCreate, TagStateChange, TagVocabulary
from services.photos.service import get_photo, get_photos
from services.photos.views import photo_view, photo_views

router = APIRouter(tags=["tags"])

PROBLEMS = problem_responses({404: "no such photo or tag for this owner"})


@router.post(
    "/v1/photos/{photo_id}/tags",
    name="add",
    status_code=status.HTTP_201_CREATED,
    response_model=Photo,
    responses=PROBLEMS,
)
def add_tag(db: SessionDep, owner: CurrentOwner, photo_id: str, body: TagCreate) -> Photo:
    """Add a user tag (confirmed, never touched by analysis). Answers the updated photo."""
    tag_service.add_user_tag(db, owner_id=owner, photo_id=photo_id, name=body.name)
    return photo_from_view(photo_view(db, get_photo(db, owner_id=owner, photo_id=photo_id)))


@router.patch("/v1/photos/{photo_id}/tags/{name}", name="set_state", response_model=Photo, responses=PROBLEMS)
def set_tag_state(
    db: SessionDep, owner: CurrentOwner, photo_id: str, name: str, body: TagStateChange
) -> Photo:
    """Confirm or reject a model tag; the decision survives every later analysis."""
    tag_service.set_tag_state(db, owner_id=owner, photo_id=photo_id, name=name, state=body.state)
    return photo_from_view(photo_view(db, get_photo(db, owner_id=owner, photo_id=photo_id)))


@router.delete(
    "/v1/photos/{photo_id}/tags/{name}",
    name="remove",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=PROBLEMS,
)
def remove_tag(db: SessionDep, owner: CurrentOwner, photo_id: str, name: str) -> Response:
    """Delete a user tag, or reject a model tag (so it does not come back)."""
    tag_service.remove_tag(db, owner_id=owner, photo_id=photo_id, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/tags", name="vocabulary", response_model=TagVocabulary, responses=PROBLEMS)
def vocabulary(db: SessionDep, owner: CurrentOwner, kind: TagKind | None = None) -> TagVocabulary:
    """Every tag in the owner's library with photo counts per kind, most used first."""
    return TagVocabulary(
        items=[TagCount(**entry) for entry in tag_service.vocabulary(db, owner_id=owner, kind=kind)]
    )


@router.get("/v1/review/tags", name="review", response_model=Page[ReviewItem], responses=PROBLEMS)
def review_tags(
    db: SessionDep,
    owner: CurrentOwner,
    paging: PagingDep,
    kind: TagKind | None = None,
) -> Page[ReviewItem]:
    """Suggested model tags, least confident first, each with its photo."""
    rows, next_cursor = tag_service.review_queue(
        db, owner_id=owner, limit=paging.limit, cursor=paging.cursor, kind=kind
    )
    photos = get_photos(db, owner_id=owner, photo_ids=list(dict.fromkeys(tag.photo_id for tag in rows)))
    views = {view.photo.id: photo_from_view(view) for view in photo_views(db, photos)}
    items = [ReviewItem(tag=Tag(**tag_service.tag_dict(tag)), photo=views[tag.photo_id]) for tag in rows]
    return Page[ReviewItem](items=items, next_cursor=next_cursor)
