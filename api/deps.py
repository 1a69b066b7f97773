"""Dependencies as Annotated aliases, so a route reads `def f(db: SessionDep, owner: CurrentOwner)`."""

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import Invalid, Unauthorized
from core.storage import BlobStore
from services.inference.models import ModelSet
from services.jobs.service import JobRunner
from services.owners.service import authenticate
from services.photos.filters import PhotoFilters

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <api key>")


def get_db(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.store
    return store


def get_models(request: Request) -> ModelSet:
    models: ModelSet = request.app.state.models
    return models


def get_job_runner(request: Request) -> JobRunner | None:
    runner: JobRunner | None = request.app.state.job_runner
    return runner


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[BlobStore, Depends(get_store)]
JobRunnerDep = Annotated[JobRunner | None, Depends(get_job_runner)]
ModelsDep = Annotated[ModelSet, Depends(get_models)]


def get_current_owner(
    db: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`")
    return authenticate(db, key=credentials.credentials)


CurrentOwner = Annotated[str, Depends(get_current_owner)]


@dataclass(frozen=True)
class Paging:
    limit: int
    cursor: str | None


def get_paging(
    limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 50,
    cursor: Annotated[str | None, Query(max_length=2000, description="opaque; from next_cursor")] = None,
) -> Paging:
    return Paging(limit=limit, cursor=cursor)


PagingDep = Annotated[Paging, Depends(get_paging)]


def _filters_dependency() -> Callable[..., PhotoFilters]:
    """A dependency whose query parameters are PhotoFilters' fields, bounds included, so the filter
    model is written once and the OpenAPI document still lists every parameter."""
    parameters = []
    for name, field in PhotoFilters.model_fields.items():
        annotation: Any = field.annotation
        query = Query(description=field.description)
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[annotation | None, *field.metadata, query],
            )
        )

    def photo_filters(**values: Any) -> PhotoFilters:
        try:
            return PhotoFilters.model_validate({k: v for k, v in values.items() if v is not None})
        except ValidationError as error:
            problems = [
                {"field": field, "message": item["msg"]}
                for item in error.errors()
                # A rule over several fields names each of them (pydantic gives no location).
                for field in item.get("ctx", {}).get("fields") or [".".join(str(p) for p in item["loc"])]
            ]
            raise Invalid("; ".join(e["message"] for e in problems), errors=problems) from None

    photo_filters.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return photo_filters


FiltersDep = Annotated[PhotoFilters, Depends(_filters_dependency())]
