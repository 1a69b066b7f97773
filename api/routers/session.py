"""Sessions: an API key exchanged for an HttpOnly cookie, for the same-origin web app."""

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials

from api.deps import SESSION_COOKIE, SessionDep, SettingsDep, SignerDep, bearer_scheme
from api.errors import problem_responses
from core.errors import Unauthorized
from schemas.session import SessionCreate, SessionInfo
from services.owners.service import live_key

router = APIRouter(prefix="/v1/session", tags=["session"])

PROBLEMS = problem_responses()


@router.post("", name="create", response_model=SessionInfo, responses=PROBLEMS)
def create_session(
    request: Request,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    body: Annotated[SessionCreate | None, Body()] = None,
) -> SessionInfo:
    """Exchange an API key (`Authorization: Bearer` or `{"api_key"}`) for an HttpOnly, SameSite=Strict
    session cookie that authenticates every route. Revoking the key ends its sessions."""
    key = body.api_key if body is not None else credentials.credentials if credentials is not None else ""
    if not key:
        raise Unauthorized('send the API key as `Authorization: Bearer <key>` or as {"api_key": ...}')
    api_key = live_key(db, key=key)
    expires = int(time.time()) + settings.session_seconds
    response.set_cookie(
        SESSION_COOKIE,
        signer.session_token(key_id=api_key.id, expires=expires),
        max_age=settings.session_seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return SessionInfo(owner_id=api_key.owner_id, expires_at=datetime.fromtimestamp(expires, UTC))


@router.delete("", name="delete", status_code=status.HTTP_204_NO_CONTENT)
def delete_session(request: Request) -> Response:
    """Sign out: the browser drops the session cookie."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response
