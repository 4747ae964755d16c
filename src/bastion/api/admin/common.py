"""What every admin route shares: tenant scoping, input checks, reads and writes off the
event loop, cache flushes. Routes parse and render; the use cases (``identity.lifecycle``,
``identity.service_account_admin``, ``identity.tenant_admin``) act, decide with
``authz.decide`` and record their events.

Tenant scoping (API.md "Admin"): an admin of the ``default`` tenant administers every
tenant; an admin of any other tenant administers that tenant only. Every route first
asks ``authorize`` about its own tenant (so a non-admin learns nothing about ids), then,
for a resource in another tenant, asks ``authorize`` again with that tenant: ``decide``
allows it for installation admins and denies it (``other_tenant``) for everyone else,
which the route answers with ``404`` so that ids of other tenants do not leak. A listing
asks ``decide`` whether the caller sees every tenant (``Resource.every_tenant``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request
from pydantic import Field
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from bastion.api.bodies import StrictBody
from bastion.api.guard import authorize, door, forget, runtime
from bastion.audit import secret_looking_value
from bastion.authz import Resource
from bastion.domain import Principal
from bastion.errors import AuthorizationError, NotFound, ValidationError
from bastion.identity.tenants import Tenant, tenant_by_id, tenant_by_name
from bastion.text import check_name

T = TypeVar("T")

MAX_ROLES = 32
MAX_COLLECTIONS = 100
_COLLECTION_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,255}\*?$")


TenantParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        description="Tenant name (installation admins only; default: the caller's tenant).",
    ),
]


class TenantScoped(StrictBody):
    """A body that may name a tenant (installation admins only; default: the caller's)."""

    tenant: str | None = Field(None, min_length=1, max_length=64)


@dataclass(frozen=True)
class Scope:
    """The tenant an admin request acts in (already authorised)."""

    principal: Principal
    tenant_id: str
    tenant_name: str

    @property
    def own(self) -> bool:
        return self.tenant_id == self.principal.tenant_id


async def read(request: Request, work: Callable[[Connection], T]) -> T:
    """Run ``work`` on a read connection off the event loop."""
    rt = runtime(request)

    def run() -> T:
        with rt.db.read() as conn:
            return work(conn)

    return await run_in_threadpool(run)


async def write(request: Request, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one write transaction off the event loop."""
    rt = runtime(request)

    def run() -> T:
        with rt.db.begin() as conn:
            return work(conn)

    return await run_in_threadpool(run)


async def enter_tenant(
    request: Request, principal: Principal, action: str, tenant_id: str, missing: NotFound
) -> None:
    """Authorise ``action`` in ``tenant_id``; another tenant's resource is ``missing`` (404)."""
    if tenant_id == principal.tenant_id:
        return
    try:
        await authorize(request, action, tenant_id=tenant_id)
    except AuthorizationError as exc:
        if exc.fields.get("reason") == "other_tenant":
            raise missing from None
        raise


async def admit(request: Request, action: str, tenant: str | None = None) -> Scope:
    """Authorise ``action`` in the caller's tenant, or in the tenant named ``tenant``."""
    principal = await authorize(request, action)
    if tenant is None or tenant == principal.tenant_name:
        return Scope(principal, principal.tenant_id, principal.tenant_name)
    found: Tenant | None = await read(request, lambda conn: tenant_by_name(conn, tenant))
    missing = NotFound(f"Tenant '{tenant}' does not exist.", code="tenant_not_found")
    if found is None:
        raise missing
    await enter_tenant(request, principal, action, found.id, missing)
    return Scope(principal, found.id, found.name)


async def admit_all(
    request: Request, action: str, tenant: str | None
) -> tuple[Principal, str | None]:
    """Like ``admit``, for listings: the caller and the tenant id to filter by.

    ``None`` means every tenant: ``decide`` grants that to an installation admin who
    named no ``tenant`` (``Decision.every_tenant``).
    """
    if tenant is not None:
        scope = await admit(request, action, tenant)
        return scope.principal, scope.tenant_id
    principal = await authorize(request, action)
    gate = door(request)
    rules = await gate.rules(principal.tenant_id)
    listing = Resource(principal.tenant_id, every_tenant=True)
    decision = gate.decide(principal, action, listing, rules)
    return principal, None if decision.every_tenant else principal.tenant_id


def now(request: Request) -> datetime:
    """The ``now`` of a request's transaction (the injected clock; read once per use case)."""
    return runtime(request).clock.now()


def plain_name(value: str, field: str) -> str:
    """Refuse a name that holds a control character (``bastion.text``) or looks like a
    secret (the audit log would redact it)."""
    check_name(value, field=field)
    if secret_looking_value(value):
        raise ValidationError(
            f"This {field} looks like a secret or token; choose another.", field=field
        )
    return value


def validate_collections(collections: Sequence[str] | None) -> list[str] | None:
    """Collection names or ``prefix*`` patterns narrowing a grant (``None``: all)."""
    if collections is None:
        return None
    if not collections:
        raise ValidationError(
            "collections must name at least one collection; omit it for all collections.",
            field="collections",
        )
    if len(collections) > MAX_COLLECTIONS:
        raise ValidationError(
            f"At most {MAX_COLLECTIONS} collection patterns.", field="collections"
        )
    bad = [item for item in collections if not _COLLECTION_PATTERN.fullmatch(item)]
    if bad:
        raise ValidationError(
            "Collection patterns are collection names (letters, digits, '_', '.', '-'), "
            "optionally ending in '*' for a prefix.",
            field="collections",
        )
    return list(dict.fromkeys(collections))


def forget_credentials(request: Request, *, subject: str | None = None) -> None:
    """After a commit: re-read live state now (the door caches it ≤ 0.5 s otherwise)."""
    forget(request, subject=subject)


def tenant_names(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, str]:
    return {tenant_id: tenant_by_id(conn, tenant_id).name for tenant_id in set(tenant_ids)}


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
