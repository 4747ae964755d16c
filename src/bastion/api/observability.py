"""``GET /healthz`` (alive), ``GET /readyz`` (ready for traffic), ``GET /metrics`` (Prometheus).

- ``/healthz`` answers as long as the process and its event loop do: no database read, so
  an orchestrator does not restart every replica because the database is slow.
- ``/readyz`` answers 200 only when the collections are loaded (the app's start-up has
  finished, ``api.observe``) and the database answers a ``SELECT 1`` (off the event loop,
  within ``READY_TIMEOUT``); otherwise 503, for load balancers. One probe at a time, and
  its answer serves the probes of the next ``PROBE_SECONDS``: a flood of ``/readyz``
  costs the database one query per second.
- ``/metrics`` is for whoever ``BASTION_METRICS`` allows (docs/observability.md):
  ``loopback`` answers other peers 404, as if there were no such endpoint (no credential
  could change that answer); ``token`` answers a missing or wrong scrape token 401 (the
  token compared with ``hmac.compare_digest``); ``off`` answers 404 to everyone.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from bastion import __version__
from bastion.api.guard import runtime
from bastion.api.responses import Health, Readiness
from bastion.audit import head, latest_checkpoint
from bastion.clock import monotonic
from bastion.config import Settings
from bastion.errors import AuthenticationError
from bastion.identity.tenants import list_tenants
from bastion.metrics import (
    CONTENT_TYPE,
    SCRAPES_REFUSED,
    TALLY,
    Gauges,
    folder_of,
    gathered,
    merged,
    render,
)
from bastion.storage import Database
from bastion.vectors import CollectionNotFound, VectorEngine

log = logging.getLogger("bastion.metrics")
router = APIRouter(tags=["operations"])
READY_TIMEOUT = 2.0
PROBE_SECONDS = 1.0
MAX_TOKEN = 1024
NO_STORE = {"Cache-Control": "no-store"}


@router.get(
    "/healthz", response_model=Health, summary="Liveness: the process answers (no database read)"
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {"model": Readiness, "description": "Not ready (still loading, or no database)"}
    },
    summary="Readiness: collections loaded and the database answers",
)
async def readyz(request: Request) -> JSONResponse:
    serving = bool(getattr(request.app.state, "serving", False))
    database = await _probe(request).answers()
    ready = serving and database
    body = {
        "status": "ready" if ready else "unavailable",
        "collections": "loaded" if serving else "loading",
        "database": "ok" if database else "unavailable",
    }
    return JSONResponse(body, status_code=200 if ready else 503, headers=NO_STORE)


class DatabaseProbe:
    """``SELECT 1`` off the event loop: one at a time, its answer kept ``PROBE_SECONDS``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._running: asyncio.Task[bool] | None = None
        self._answer: tuple[float, bool] | None = None

    async def answers(self) -> bool:
        if self._answer is not None and monotonic() - self._answer[0] < PROBE_SECONDS:
            return self._answer[1]
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._ask())
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), READY_TIMEOUT)
        except TimeoutError:
            log.warning("readiness: the database did not answer within %.0f s", READY_TIMEOUT)
            return False

    async def _ask(self) -> bool:
        try:
            await asyncio.to_thread(self._ping)
            answer = True
        except Exception as exc:  # any failure means "not ready"; the reason is logged
            log.warning("readiness: the database does not answer (%s)", type(exc).__name__)
            answer = False
        self._answer = (monotonic(), answer)
        return answer

    def _ping(self) -> None:
        with self.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")


def _probe(request: Request) -> DatabaseProbe:
    state = request.app.state
    probe: DatabaseProbe | None = getattr(state, "database_probe", None)
    if probe is None:
        probe = state.database_probe = DatabaseProbe(runtime(request).db)
    return probe


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    _admit(request, settings)
    snapshot, workers = TALLY.snapshot(), 1
    if settings.resolved_workers > 1:
        snapshots, workers = gathered(folder_of(settings.data_dir), snapshot)
        snapshot = merged(snapshots)
    gauges = await _gauges(request, workers)
    return Response(render(snapshot, gauges), media_type=CONTENT_TYPE, headers=NO_STORE)


def _admit(request: Request, settings: Settings) -> None:
    """Return when this request may read the metrics; raise the refusal otherwise."""
    if settings.metrics == "off":
        raise HTTPException(404)
    if settings.metrics == "loopback":
        client = request.client
        if client is None or not _is_loopback(client.host):
            TALLY.count(SCRAPES_REFUSED, ("not_loopback",))
            raise HTTPException(404)
        return
    assert settings.metrics_token is not None  # Settings requires it with metrics = token
    scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        TALLY.count(SCRAPES_REFUSED, ("missing_token",))
        raise AuthenticationError("Send the scrape token: Authorization: Bearer <token>.")
    expected = settings.metrics_token.get_secret_value().encode()
    given = presented.strip().encode("utf-8", "surrogateescape")
    if len(given) > MAX_TOKEN or not hmac.compare_digest(given, expected):
        TALLY.count(SCRAPES_REFUSED, ("wrong_token",))
        raise AuthenticationError("The scrape token is not valid.", code="invalid_token")


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1
    return address.is_loopback


async def _gauges(request: Request, workers: int) -> Gauges:
    rt = runtime(request)
    engine: VectorEngine = request.app.state.vectors

    def read() -> tuple[Any, Any, list[str]]:
        with rt.db.read() as conn:
            return head(conn), latest_checkpoint(conn), [t.id for t in list_tenants(conn)]

    chain_head, checkpoint, tenant_ids = await asyncio.to_thread(read)
    sizes: list[int] = []
    for tenant_id in tenant_ids:
        for name in await engine.list_collections(tenant_id):
            try:
                sizes.append((await engine.get_collection(tenant_id, name)).points_count)
            except CollectionNotFound:  # deleted meanwhile
                continue
    age = None
    if checkpoint is not None:
        age = max(0.0, (rt.clock.now() - checkpoint.at).total_seconds())
    return Gauges(
        version=__version__,
        workers=workers,
        audit_chain_length=chain_head[0] if chain_head else 0,
        audit_checkpointed_seq=checkpoint.seq if checkpoint else 0,
        audit_checkpoint_age=age,
        collections=len(sizes),
        points=sum(sizes),
        largest_collection=max(sizes, default=0),
    )
