"""Dependencies as Annotated aliases, so a route reads `def f(db: SessionDep, owner: CurrentOwner)`."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import Unauthorized
from core.storage import BlobStore
from services.jobs.service import JobRunner
from services.owners.service import authenticate

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <api key>")


def get_db(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> BlobStore:
    return request.app.state.store


def get_job_runner(request: Request) -> JobRunner | None:
    return request.app.state.job_runner


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[BlobStore, Depends(get_store)]
JobRunnerDep = Annotated[JobRunner | None, Depends(get_job_runner)]


def get_current_owner(
    db: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`")
    return authenticate(db, key=credentials.credentials)


CurrentOwner = Annotated[str, Depends(get_current_owner)]
