"""Dependencies as Annotated aliases, so a route reads `def f(db: SessionDep, owner: CurrentOwner)`."""

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import Invalid, Unauthorized
from core.signing import SIGNATURE_PARAM, OwnerUrls, UrlSigner, current_urls
from core.storage import BlobStore
from services.inference.models import ModelSet
from services.jobs.service import JobRunner
from services.owners.service import authenticate, session_owner
from services.photos.filters import PhotoFilters

SESSION_COOKIE = "shoebox_session"
bearer_scheme = HTTPBearer(auto_error=False, description="Authorization: Bearer <api key>")
_session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="session cookie from POST /v1/session (web app)"
)


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


def get_signer(request: Request) -> UrlSigner:
    signer: UrlSigner = request.app.state.signer
    return signer


SignerDep = Annotated[UrlSigner, Depends(get_signer)]


def authenticated_owner(
    request: Request,
    db: SessionDep,
    signer: SignerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    session: Annotated[str | None, Depends(_session_cookie)],
) -> str:
    """The owner of a request, by (in this order) an API key, a signed URL, or a session cookie."""
    if credentials is not None:
        if credentials.scheme.lower() != "bearer" or not credentials.credentials:
            raise Unauthorized("send an API key as `Authorization: Bearer <key>`")
        return authenticate(db, key=credentials.credentials)
    if SIGNATURE_PARAM in request.query_params:
        # A signed URL only ever reads the bytes it was made for.
        if request.method not in ("GET", "HEAD"):
            raise Unauthorized("a signed URL only reads; send an API key")
        return signer.verify(request.url.path, dict(request.query_params))
    if session:
        key_id = signer.session_key_id(session)
        if key_id is None:
            raise Unauthorized("the session cookie is invalid or expired; sign in again")
        return session_owner(db, key_id=key_id)
    raise Unauthorized("send an API key as `Authorization: Bearer <key>` (or sign in for a session cookie)")


async def get_current_owner(signer: SignerDep, owner_id: Annotated[str, Depends(authenticated_owner)]) -> str:
    # Async on purpose: the context variable is set in the request's own context, which the endpoint's
    # worker thread then copies (a sync dependency would set it in a throw-away copy).
    current_urls.set(OwnerUrls(signer=signer, owner_id=owner_id))
    return owner_id


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
