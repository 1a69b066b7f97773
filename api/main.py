"""The FastAPI application: factory, lifespan, middleware, routers."""

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute

import services.analysis.service as analysis
import services.exports.service as exports
import services.faces.service as faces
import services.library.bulk as bulk
import services.library.trash as trash
import services.photos.integrity as integrity
from api import metrics
from api.errors import install_error_handlers
from api.routers import ALL_ROUTERS
from core.config import Settings, get_settings
from core.storage import BlobStore
from db.session import get_engine, session_factory, session_scope, upgrade_schema
from services.inference.models import ModelSet, check_manifest
from services.jobs.service import JobContext, JobRunner
from services.owners.service import ensure_bootstrap_owner

log = logging.getLogger("shoebox")


def operation_id(route: APIRoute) -> str:
    """`photos-upload`-style ids, so generated SDKs get clean method names."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def register_job_types() -> None:
    integrity.register()
    analysis.register()
    faces.register()
    exports.register()
    bulk.register()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for these settings (default: the environment's); `uvicorn --factory api.main:create_app`."""
    settings = settings or get_settings()
    # A no-op when the host (uvicorn, pytest) configured logging already.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade_schema(settings.database_url)
        engine = get_engine(settings.database_url)
        app.state.sessions = session_factory(engine)
        app.state.store = BlobStore(settings.blob_root, settings.data_dir / "cache")
        if settings.bootstrap_key:
            with session_scope(app.state.sessions) as db:
                ensure_bootstrap_owner(db, key=settings.bootstrap_key)
        register_job_types()
        check_manifest()
        if settings.load_models_at_start:
            app.state.models.warm_up()
        app.state.job_runner = None
        if settings.run_job_workers:
            context = JobContext(
                sessions=app.state.sessions, store=app.state.store, settings=settings, models=app.state.models
            )
            app.state.job_runner = JobRunner(
                context,
                settings.job_workers,
                settings.job_poll_seconds,
                maintenance=[exports.cleanup_task, trash.purge_task],
            )
            app.state.job_runner.start()
        log.info("shoebox ready: database %s, data %s", engine.url.render_as_string(), settings.data_dir)
        try:
            yield
        finally:
            if app.state.job_runner is not None:
                app.state.job_runner.stop()

    app = FastAPI(
        title="Shoebox",
        version="1.0.0",
        summary="Self-hosted photo-ML backend: tags, people, search, quality and metadata export.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.models = ModelSet(settings)
    install_error_handlers(app)

    @app.middleware("http")
    async def request_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        request.state.request_id = request_id
        started = time.perf_counter()
        response = await call_next(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        response.headers["X-Request-ID"] = request_id
        # The route template, not the raw path, so ids do not explode the metric's label set.
        route = request.scope.get("route")
        metrics.record_request(
            request.method, getattr(route, "path", "unmatched"), response.status_code, elapsed_ms / 1000
        )
        log.info(
            "%s %s %d %.1fms id=%s",
            request.method,
            request.url.path,
            response.status_code,
            elapsed_ms,
            request_id,
        )
        return response

    for router in ALL_ROUTERS:
        app.include_router(router)
    return app
