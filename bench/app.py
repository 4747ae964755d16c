"""The bench's app: Bastion's own, with a door that lets credential-less requests through.

Benchmarks only, never shipped as a setting: ``create_bench_app`` builds the real app
(``bastion.app.create_app``) and puts ``BenchDoor`` in front of its door. A request
**without** a credential skips authentication and authorisation (it acts as an admin of
the default tenant at aal3); a request **with** a Bearer token or an api-key goes through
the whole door as always (tests/security/test_bench_switch.py proves a forged or too weak
credential is still refused). So one server, with one index in memory, measures search
with authentication and without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from bastion.api.guard import Door
from bastion.app import create_app
from bastion.authn.request import Credentials
from bastion.clock import Clock
from bastion.config import Settings
from bastion.domain import Grant, Principal


@dataclass
class BenchDoor(Door):
    """``Door``, except that a request without credentials is ``bench`` (no decision)."""

    bench: Principal | None = None

    async def authorize(
        self,
        credentials: Credentials,
        action: str,
        *,
        collection: str | None = None,
        tenant_id: str | None = None,
        ip: str | None = None,
    ) -> Principal:
        if self.bench is not None and not credentials.present:
            return self.bench
        return await super().authorize(
            credentials, action, collection=collection, tenant_id=tenant_id, ip=ip
        )


def create_bench_app(
    settings: Settings, *, clock: Clock | None = None, worker: bool = False
) -> FastAPI:
    app = create_app(settings, clock=clock, worker=worker)
    door: Door = app.state.door
    tenant = app.state.default_tenant
    bench = Principal(
        kind="user",
        id="bench",
        name="bench",
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        grants=(Grant("admin", tenant.id),),
        acr="aal3",
        auth_time=door.clock.now(),
    )
    app.state.door = BenchDoor(door.authn, door.db, door.clock, door.continuous, bench=bench)
    return app
