"""Every router of the API, in the order their paths appear in the OpenAPI document."""

from fastapi import APIRouter

from api.routers import (
    events,
    exports,
    faces,
    health,
    jobs,
    library,
    people,
    photos,
    search,
    session,
    setup,
    tags,
)

ALL_ROUTERS: list[APIRouter] = [
    health.router,
    session.router,
    setup.router,
    events.router,
    photos.router,
    library.bulk,
    tags.router,
    faces.router,
    people.router,
    search.router,
    exports.router,
    jobs.router,
    library.albums,
    library.trash,
    library.library,
]
