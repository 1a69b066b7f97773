"""Liveness and readiness."""

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from api import metrics
from api.deps import SessionDep
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


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus_metrics(db: SessionDep) -> PlainTextResponse:
    """Prometheus text format: request counts and durations, photos, faces and jobs by state."""
    return PlainTextResponse(metrics.render(db), media_type="text/plain; version=0.0.4")
