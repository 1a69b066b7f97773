"""Liveness, readiness and metrics."""

import secrets
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from api import metrics
from api.deps import SessionDep, SettingsDep
from api.openapi import PROBLEM_MEDIA_TYPE
from core.errors import Unauthorized
from services.inference.readiness import model_readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(description="per check: ok, or what is wrong")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "database or models not ready"}},
)
def readyz(request: Request, db: SessionDep) -> JSONResponse:
    """Ready when the database answers and every default model file is in place."""
    checks: dict[str, str] = {}
    try:
        db.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports, never raises
        checks["database"] = f"error: {type(exc).__name__}"
    checks.update(model_readiness(request.app.state.settings))
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        401: {
            "description": "SHOEBOX_METRICS_TOKEN is set and was not sent",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    },
)
def prometheus_metrics(request: Request, db: SessionDep, settings: SettingsDep) -> PlainTextResponse:
    """Prometheus text format: request counts and durations (5xx included). Photos, faces and jobs by
    state, across every owner, only with `Authorization: Bearer <SHOEBOX_METRICS_TOKEN>`; without a
    configured token nobody gets them."""
    token = settings.metrics_token
    if token:
        sent = request.headers.get("authorization", "")
        if not secrets.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("send the metrics token as `Authorization: Bearer <token>`")
    return PlainTextResponse(
        metrics.render(db, include_library=bool(token)), media_type="text/plain; version=0.0.4"
    )
