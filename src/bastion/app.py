"""Builds the ASGI app: routers, error handlers, body limit, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from bastion import __version__
from bastion.api import auth, me, setup, wellknown
from bastion.api.guard import AuditBuffer, LivenessCache
from bastion.api.limits import BodySizeLimit
from bastion.api.problems import install as install_error_handlers
from bastion.authn.login import LoginThrottles
from bastion.clock import Clock
from bastion.config import Settings
from bastion.identity.bootstrap import Bootstrap, bootstrap
from bastion.runtime import Runtime

log = logging.getLogger("bastion")
AUDIT_FLUSH_SECONDS = 1.0


async def _flush_audit_forever(buffer: AuditBuffer) -> None:
    while True:
        await asyncio.sleep(AUDIT_FLUSH_SECONDS)
        try:
            await asyncio.to_thread(buffer.flush)
        except Exception:  # keep flushing; the failure is logged, never swallowed silently
            log.exception("audit buffer flush failed")


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    rt = Runtime.open(settings, clock=clock)
    started: Bootstrap = bootstrap(rt)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = app.state.vectors
        await asyncio.to_thread(engine.open)
        flusher = asyncio.create_task(_flush_audit_forever(app.state.audit_buffer))
        try:
            yield
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            app.state.audit_buffer.flush()
            await asyncio.to_thread(engine.close)
            rt.close()

    app = FastAPI(
        title="Bastion",
        version=__version__,
        description="A vector database behind a zero-trust front door. Data plane: Qdrant REST "
        "subset. Errors: RFC 9457 problem+json on /auth, /me, /admin.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = rt
    app.state.bootstrap = started
    app.state.default_tenant = started.tenant
    app.state.liveness = LivenessCache()
    app.state.throttles = LoginThrottles()
    app.state.audit_buffer = AuditBuffer(rt)
    app.state.settings = settings
    app.state.clock = rt.clock

    from bastion.api import dataplane
    from bastion.vectors import EmbeddedEngine

    app.state.vectors = EmbeddedEngine(rt.db, settings.data_dir, settings)

    install_error_handlers(app)
    for router in (wellknown.router, auth.router, me.router, setup.router, dataplane.router):
        app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
