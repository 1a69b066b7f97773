"""Search: by text, by example image, similar photos, near-duplicate groups."""

from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile

from api.deps import CurrentOwner, FiltersDep, ModelsDep, PagingDep, SessionDep, SettingsDep, StoreDep
from api.errors import problem_responses
from core.errors import Invalid, TooLarge
from schemas.common import Problem
from schemas.photos import photo_from_view
from schemas.search import BestBy, DuplicateGroup, DuplicatePage, Match, SearchHit, SearchPage
from services.photos.views import photo_views
from services.search import duplicates as duplicate_service
from services.search import service as search_service

router = APIRouter(tags=["search"])

PROBLEMS = problem_responses()


def _page(db: SessionDep, hits: list[search_service.SearchHit], next_cursor: str | None) -> SearchPage:
    views = photo_views(db, [hit.photo for hit in hits])
    return SearchPage(
        items=[
            SearchHit(photo=photo_from_view(view), score=hit.score, matched=[Match(**m) for m in hit.matched])
            for hit, view in zip(hits, views, strict=True)
        ],
        next_cursor=next_cursor,
    )


@router.get("/v1/search", name="text", response_model=SearchPage, responses=PROBLEMS)
def search_text(
    db: SessionDep,
    models: ModelsDep,
    settings: SettingsDep,
    owner: CurrentOwner,
    paging: PagingDep,
    filters: FiltersDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=search_service.MAX_QUERY_LENGTH,
            description="words: things, kinds, people, places, years, months, seasons, cameras, file names",
        ),
    ],
) -> SearchPage:
    """Photos matching the words by tags, labels, categories, people, caption, file name, camera, capture
    date and place, and by meaning; ranked, with `matched` saying why. Combines with every filter."""
    hits, next_cursor = search_service.search_text(
        db,
        models,
        owner_id=owner,
        query=q,
        filters=filters,
        limit=paging.limit,
        cursor=paging.cursor,
        learned=settings.text_search_learned,
    )
    return _page(db, hits, next_cursor)


@router.post(
    "/v1/search/by-image",
    name="by-image",
    response_model=SearchPage,
    responses={**PROBLEMS, 413: {"model": Problem}, 415: {"model": Problem}},
)
def search_by_image(
    db: SessionDep,
    models: ModelsDep,
    owner: CurrentOwner,
    paging: PagingDep,
    settings: SettingsDep,
    filters: FiltersDep,
    file: Annotated[UploadFile, File(description="the example image; analysed, never stored")],
) -> SearchPage:
    """The owner's photos most like an example image (image-embedding cosine), with the filters."""
    # Read at most one byte past the limit so an oversized file never sits whole in memory.
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise TooLarge(f"the file is larger than the {settings.max_upload_bytes} byte limit")
    if not data:
        raise Invalid("the file is empty", errors=[{"field": "file", "message": "empty"}])
    hits, next_cursor = search_service.search_by_image(
        db,
        settings,
        models,
        owner_id=owner,
        data=data,
        filters=filters,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return _page(db, hits, next_cursor)


@router.get(
    "/v1/photos/{photo_id}/similar",
    name="similar",
    response_model=SearchPage,
    responses={
        **PROBLEMS,
        404: {"model": Problem, "description": "no such photo"},
        409: {"model": Problem, "description": "not analysed yet"},
    },
)
def similar_photos(
    db: SessionDep,
    owner: CurrentOwner,
    paging: PagingDep,
    photo_id: str,
    filters: FiltersDep,
) -> SearchPage:
    """The owner's photos most like this one (itself left out), with the filters."""
    hits, next_cursor = search_service.similar_photos(
        db, owner_id=owner, photo_id=photo_id, filters=filters, limit=paging.limit, cursor=paging.cursor
    )
    return _page(db, hits, next_cursor)


@router.get("/v1/duplicates", name="duplicates", response_model=DuplicatePage, responses=PROBLEMS)
def list_duplicates(
    db: SessionDep,
    owner: CurrentOwner,
    paging: PagingDep,
    store: StoreDep,
) -> DuplicatePage:
    """Groups of near-duplicate photos, biggest groups first, each with its best shot first."""
    groups, next_cursor = duplicate_service.duplicate_groups(
        db, store, owner_id=owner, limit=paging.limit, cursor=paging.cursor
    )
    items: list[DuplicateGroup] = []
    for group in groups:
        photos = [photo_from_view(view) for view in photo_views(db, group.photos)]
        items.append(
            DuplicateGroup(
                photos=photos,
                best_photo_id=photos[0].id,
                size=len(photos),
                similarity=group.similarity,
                best_by=BestBy(group.best_by),
            )
        )
    return DuplicatePage(items=items, next_cursor=next_cursor)
