"""Builds the ASGI app: routers, error handlers, body limit, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp

from bastion import __version__, console
from bastion.api import (
    admin,
    auth,
    backup,  # noqa: F401 (registers its routes in dataplane.table)
    dataplane,
    dataplane_aliases,  # noqa: F401 (registers its routes in dataplane.table)
    dataplane_query,  # noqa: F401 (registers its routes in dataplane.table)
    devices,
    me,
    observability,
    openapi,
    setup,
    wellknown,
)
from bastion.api.backup import RESTORE_PATH
from bastion.api.guard import Door
from bastion.api.headers import install as install_security_headers
from bastion.api.limits import BodySizeLimit
from bastion.api.observe import Observe
from bastion.api.problems import install as install_error_handlers
from bastion.audit import CHECKPOINT_INTERVAL, AuditBuffer
from bastion.authn.continuous import ContinuousEvaluation
from bastion.authn.liveness import LivenessCache
from bastion.authn.request import LiveState, RequestAuthenticator
from bastion.clock import Clock
from bastion.config import Settings
from bastion.domain import Grant, Principal
from bastion.identity.bootstrap import Bootstrap, bootstrap, joined
from bastion.identity.tenants import Tenant
from bastion.runtime import Runtime
from bastion.storage.redact import redact_database_errors
from bastion.vectors import EmbeddedEngine
from bastion.vectors.aliases import Aliases
from bastion.vectors.engine import VectorEngine
from bastion.vectors.factory import build_engine

log = logging.getLogger("bastion")
AUDIT_FLUSH_SECONDS = 1.0
AUDIT_CHECKPOINT_SECONDS = CHECKPOINT_INTERVAL.total_seconds()
RISK_HOUSEKEEPING_SECONDS = 60.0


def checkpoint_audit(rt: Runtime) -> None:
    """Sign the head of the audit chain (no-op when nothing was appended since) and send
    it to the checkpoint sinks (a sink that fails is logged and retried next time)."""
    rt.checkpointer.run(signer=rt.keyring.sign)


async def _housekeeping(
    rt: Runtime, buffer: AuditBuffer, engine: EmbeddedEngine, continuous: ContinuousEvaluation
) -> None:
    """Every second: flush batched audit events, notice a key rotation made by the CLI,
    and take in the other workers' writes (``--workers N``); every minute: the risk
    engine's usage, baselines and old rows (``ContinuousEvaluation.housekeeping``); every
    five minutes: sign an audit checkpoint."""
    since_checkpoint = 0.0
    since_risk = RISK_HOUSEKEEPING_SECONDS  # once at start (prunes what expired while down)
    while True:
        await asyncio.sleep(AUDIT_FLUSH_SECONDS)
        since_checkpoint += AUDIT_FLUSH_SECONDS
        since_risk += AUDIT_FLUSH_SECONDS
        if since_risk >= RISK_HOUSEKEEPING_SECONDS:
            since_risk = 0.0
            try:
                await asyncio.to_thread(continuous.housekeeping)
            except Exception:  # logged; the next minute retries
                log.exception("risk housekeeping failed")
        with contextlib.suppress(Exception):  # logged by the engine; the next call retries
            await engine.keep_up()
        try:
            await asyncio.to_thread(buffer.flush)
            signing_with = rt.keyring.active.kid
            reloaded = await asyncio.to_thread(rt.reload_keys_if_rotated)
            if reloaded and rt.keyring.active.kid != signing_with:  # not the first start's own
                log.info("signing keys reloaded: new key %s", rt.keyring.active.kid)
            if since_checkpoint >= AUDIT_CHECKPOINT_SECONDS:
                since_checkpoint = 0.0
                await asyncio.to_thread(checkpoint_audit, rt)
        except Exception:  # keep going; the failure is logged, never swallowed silently
            log.exception("audit housekeeping failed")


def _open_engine(rt: Runtime, engine: VectorEngine) -> None:
    """Open the vector engine under the start-up lock (on PostgreSQL it may create the
    pgvector extension and tables, which replicas starting together must not race for)."""
    with rt.db.startup_lock():
        engine.open()


class BastionAPI(FastAPI):
    """FastAPI, with data-plane requests sent straight to their routes."""

    def build_middleware_stack(self) -> ASGIApp:
        return dataplane.table.served_first(self, super().build_middleware_stack())


def create_app(settings: Settings, *, clock: Clock | None = None, worker: bool = False) -> FastAPI:
    """The app; ``worker``: one of several processes whose parent already bootstrapped."""
    rt = Runtime.open(settings, clock=clock)
    if worker:
        started: Bootstrap = joined(rt.db, now=rt.clock.now())
    else:
        password = settings.bootstrap_admin_password
        started = bootstrap(
            rt.db,
            hasher=rt.hasher,
            admin_password=password.get_secret_value() if password is not None else None,
            public_url=settings.resolved_public_url,
            now=rt.clock.now(),
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = app.state.vectors
        try:
            await asyncio.to_thread(_open_engine, rt, engine)
        except BaseException as exc:  # uvicorn prints it: without the values it quotes
            redact_database_errors(exc)
            raise
        # Everything loaded so far (points, payloads, indexes) lives as long as the server:
        # keep it out of the cyclic GC's scans so full collections stay short.
        gc.collect()
        gc.freeze()
        continuous = app.state.door.continuous
        flusher = asyncio.create_task(_housekeeping(rt, app.state.audit_buffer, engine, continuous))
        try:
            yield
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            app.state.audit_buffer.flush()
            with contextlib.suppress(Exception):  # the usage of the last minutes
                continuous.housekeeping()
            checkpoint_audit(rt)
            await asyncio.to_thread(engine.close)
            rt.close()

    app = BastionAPI(
        title="Bastion",
        version=__version__,
        description="A vector database behind a zero-trust front door. Data plane: Qdrant REST "
        "subset. Errors: RFC 9457 problem+json on /auth, /me, /admin.",
        lifespan=lifespan,
        docs_url=None,  # the console and /openapi.json; no CDN-loaded Swagger UI
        redoc_url=None,
        # FastAPI's OpenTelemetry hooks ask the providers on every request (≈ 15 µs);
        # Bastion's record of who did what is its audit log.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = rt
    app.state.bootstrap = started
    app.state.default_tenant = started.tenant
    app.state.settings = settings
    app.state.clock = rt.clock
    app.state.liveness = LivenessCache()
    app.state.audit_buffer = buffer = AuditBuffer(rt.db, rt.clock)
    app.state.door = Door(
        RequestAuthenticator(
            db=rt.db,
            clock=rt.clock,
            verify_token=rt.verify_access_token,
            token_cache=rt.token_cache,
            liveness=app.state.liveness,
            anonymous=_anonymous(started.tenant) if settings.anonymous_read else None,
            on_rejected_key=lambda state: _count_rejected(buffer, state),
        ),
        rt.db,
        rt.clock,
        ContinuousEvaluation(rt.risk_engine, db=rt.db, clock=rt.clock),
    )
    app.state.vectors = build_engine(rt.db, settings, clock=rt.clock)
    app.state.aliases = Aliases(rt.db, rt.clock)

    install_error_handlers(app)
    openapi.install(app, dataplane.table)  # data-plane routes: served by ``BastionAPI``
    for router in (
        wellknown.router,
        auth.router,
        me.router,
        devices.router,
        admin.router,
        setup.router,
        console.router,
        observability.router,
    ):
        app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, exempt=RESTORE_PATH)
    install_security_headers(app)  # on every response, the 413 too
    app.add_middleware(Observe, settings=settings)  # request id, metrics (outermost)
    return app


def _anonymous(tenant: Tenant) -> Principal:
    """Who a request without credentials is, when read-only anonymous access is on."""
    return Principal(
        kind="anonymous",
        id="anonymous",
        name="anonymous",
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        grants=(Grant("viewer", tenant.id),),
        acr="aal1",
    )


def _count_rejected(buffer: AuditBuffer, state: LiveState) -> None:
    buffer.count_rejected_key(
        state.refusal or "unknown",
        key_id=state.key_id,
        account_id=state.principal_id or None,
        tenant_id=state.tenant_id or None,
    )
