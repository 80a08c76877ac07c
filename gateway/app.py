"""The gateway's application factory: routers, error handlers and lifespan in plain calls."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from exchange.audit.worker import AuditWorker
from exchange.core.config import Environment, Settings
from exchange.core.db import make_engine, migrate, session_factory
from exchange.identity.apikeys import development_keys
from exchange.security.keystore import LocalKeyStore, master_key_from_settings
from gateway import (
    admin,
    apidocs,
    auditor,
    catalogue_api,
    connectors_api,
    console,
    indicators_api,
    metrics,
    openapi,
    problems,
    publish,
    query,
    readiness,
    schema_registry,
    search,
    security,
    sharing_api,
    urls,
)
from gateway.accesslog import ObserveMiddleware
from gateway.audited import AuditMiddleware
from gateway.bodylimit import BodyLimitMiddleware
from gateway.deps import AppState
from gateway.requestid import RequestIdMiddleware

log = logging.getLogger(__name__)


def _freeze_startup_heap() -> None:
    """Take what start-up built out of the garbage collector's way.

    The gateway starts with about 340,000 long-lived objects (SQLAlchemy's
    mappers and compiled statements, pydantic's validators, the migrations).
    A full collection walks every one of them with the GIL held: 120 to 160 ms
    in which no request moves. Frozen, they are never walked again; what the
    requests allocate is collected as before.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings) -> FastAPI:
    """Build the gateway for ``settings``; the lifespan opens and closes the database."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.db_url)
        migrate(engine)
        sessions = session_factory(engine)
        if settings.env is Environment.PRODUCTION:
            with sessions() as session:
                leftovers = development_keys(session)
            if leftovers:
                log.warning(
                    "production: %d API key(s) made by the demo or in development mode will "
                    "be refused (development_credential): %s; revoke them and make new ones",
                    len(leftovers),
                    ", ".join(leftovers[:20]),
                )
        keystore = LocalKeyStore(sessions, master_key_from_settings(settings))
        state = AppState(settings, sessions, keystore)
        state.publishers = publish.Publishers()
        app.state.exchange = state
        # The threadpool that runs the routes' work (FastAPI's sync routes), for this loop.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = settings.gateway.worker_threads
        # Signs tree heads and mirrors them to Kafka.
        worker = AuditWorker(settings, sessions, keystore, on_sign=state.metrics.head_signed)
        worker.start()
        _freeze_startup_heap()
        try:
            yield
        finally:
            gc.unfreeze()  # a process that builds apps in turn (tests) lets each one go
            state.audit_writer.close()  # the last entries committed before the last head
            worker.stop()
            state.publishers.close()
            engine.dispose()

    # The documentation is served from the gateway's own assets (gateway/apidocs.py), and
    # in production only when gateway.api_docs says so; FastAPI's CDN pages never.
    docs_open = settings.api_docs_open
    app = FastAPI(
        title="Data Exchange gateway",
        version="0.1.0",
        description="Purpose-bound access to the shared registry; every decision is audited.",
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs_open else None,
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    app.include_router(query.router)
    app.include_router(search.router)
    # Identifiers in URLs (GET /v1/persons/{resident_id}, ?name=): development only.
    if settings.env is Environment.DEVELOPMENT:
        app.include_router(query.development_router)
        app.include_router(search.development_router)
        app.include_router(auditor.development_router)
    else:
        app.include_router(urls.production_router)
    urls.install_access_log_redaction()
    app.include_router(catalogue_api.router)
    app.include_router(sharing_api.router)
    app.include_router(schema_registry.router)
    app.include_router(publish.router)
    app.include_router(admin.router)
    app.include_router(auditor.router)
    app.include_router(indicators_api.router)
    app.include_router(connectors_api.router)
    if settings.console.enabled:
        console.install(app)
    if docs_open:
        apidocs.install(app)
    if settings.gateway.metrics:
        metrics.install(app)

    # Inside the request id middleware (added last, so outermost): every audited request
    # has its id, and an unexpected error is audited before that middleware answers 500.
    # Between the two, each request is counted and access-logged once it is answered.
    # Innermost: a body over the limit is refused as the matched route reads it (audited).
    app.add_middleware(BodyLimitMiddleware, limit=settings.gateway.max_body_bytes)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(ObserveMiddleware, access_log=settings.gateway.access_log)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/healthz", tags=["operations"], summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    readiness.install(app)

    openapi.complete(app, security.document, problems.document)

    return app
