"""The FastAPI application: factory, lifespan, middleware, routers."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from api.docs import install_docs
from api.errors import install_error_handlers
from api.http import HeadAsGet, http_contract
from api.middleware import RequestGuard
from api.openapi import install_openapi
from api.routers import ALL_ROUTERS
from api.web import install_web_app
from core.config import Settings, get_settings
from core.signing import UrlSigner, load_or_create_secret
from db.session import get_engine, session_factory, session_scope, upgrade_schema
from services.inference.models import ModelSet, check_manifest
from services.jobs.registry import maintenance_tasks, register_job_types
from services.jobs.service import JobContext, JobRunner
from services.owners.service import ensure_bootstrap_owner
from services.search.warm import Warmer

log = logging.getLogger("shoebox")


def operation_id(route: APIRoute) -> str:
    """`photos-upload`-style ids, so generated SDKs get clean method names."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for these settings (default: the environment's); `uvicorn --factory api.main:create_app`."""
    settings = settings or get_settings()
    # A no-op when the host (uvicorn, pytest) configured logging already.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade_schema(settings.database_url)
        engine = get_engine(settings.database_url, settings.db_statement_timeout_ms)
        app.state.sessions = session_factory(engine)
        app.state.store = settings.open_blob_store()
        app.state.signer = UrlSigner(
            load_or_create_secret(settings.data_dir, settings.url_secret), settings.signed_url_seconds
        )
        if settings.bootstrap_key:
            with session_scope(app.state.sessions) as db:
                ensure_bootstrap_owner(db, key=settings.bootstrap_key)
        register_job_types()
        check_manifest()
        if settings.load_models_at_start:
            app.state.models.warm_up()
        # This lifespan's own runner, stopped by this lifespan: if the app is started twice (two test
        # clients), the first runner must not be orphaned when app.state points at the second.
        runner: JobRunner | None = None
        if settings.run_job_workers:
            context = JobContext(
                sessions=app.state.sessions, store=app.state.store, settings=settings, models=app.state.models
            )
            if settings.job_backend == "dramatiq":
                # Distributed: this process publishes jobs as tasks; worker processes run them.
                from services.jobs.distributed import BrokerDispatcher, make_broker

                runner = BrokerDispatcher(
                    context, make_broker(settings), settings.job_poll_seconds, maintenance=maintenance_tasks()
                )
            else:
                runner = JobRunner(
                    context, settings.job_workers, settings.job_poll_seconds, maintenance=maintenance_tasks()
                )
            runner.start()
        app.state.job_runner = runner
        # What start-up loaded lives as long as the process: kept out of the collector's full passes,
        # which otherwise walk its quarter of a million objects (150-250 ms on a busy 2-core machine)
        # every few responses that allocate much (a timeline by day has 9 000 buckets at 100 000 photos).
        gc.collect()
        gc.freeze()
        log.info("shoebox ready: database %s, data %s", engine.url.render_as_string(), settings.data_dir)
        # After the freeze: what the warm-up loads is replaced as the library changes.
        warmer = Warmer(app.state.sessions, settings.warm_owners)
        warmer.start()
        try:
            yield
        finally:
            warmer.stop()
            if runner is not None:
                runner.stop()
            # Collectable again once this app is done (tests start many in one process).
            gc.unfreeze()

    app = FastAPI(
        title="Shoebox",
        version="1.0.0",
        summary="Self-hosted photo-ML backend: tags, people, search, quality and metadata export.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        dependencies=[Depends(http_contract)],
        # Served by install_docs with local assets instead of FastAPI's CDN links.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.models = ModelSet(settings)
    install_error_handlers(app)
    if settings.cors_origins:
        # Listed origins only: credentials (the session cookie) are allowed, so never a wildcard.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-None-Match",
                "If-Modified-Since",
                "X-Request-ID",
            ],
            expose_headers=["ETag", "Last-Modified", "Content-Disposition", "X-Request-ID", "Location"],
            max_age=600,
        )

    # Outermost of our own layers: it must see every exception and every status.
    app.add_middleware(RequestGuard, settings=settings)

    # Outermost, so the request log, CORS and every route see a HEAD as the GET it stands for.
    app.add_middleware(HeadAsGet)
    for router in ALL_ROUTERS:
        app.include_router(router)
    install_openapi(app)
    install_docs(app)
    # Last: its catch-all route answers only what no API route does.
    install_web_app(app)
    return app
