"""What every admin route shares: tenant scoping, the grant rules, audit, cache flushes.

Tenant scoping (API.md "Admin"): an admin of the ``default`` tenant administers every
tenant; an admin of any other tenant administers that tenant only. Every route first
asks ``authorize`` about its own tenant (so a non-admin learns nothing about ids), then,
for a resource in another tenant, asks ``authorize`` again with that tenant: ``decide``
allows it for installation admins and denies it (``other_tenant``) for everyone else,
which the route answers with ``404`` so that ids of other tenants do not leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request
from pydantic import Field
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from bastion.api.bodies import StrictBody
from bastion.api.guard import authorize, forget, runtime, tenant_rules
from bastion.audit import AuditEvent, emit, secret_looking_value
from bastion.authz import (
    BUILTIN_ROLES,
    DEFAULT_TENANT,
    Role,
    can_grant,
    granted_permissions,
    permissions_of,
    role_named,
)
from bastion.domain import Grant, Principal
from bastion.errors import AuthorizationError, Conflict, NotFound, ValidationError
from bastion.identity.tenants import Tenant, tenant_by_id, tenant_by_name
from bastion.storage import CommitThenRaise

T = TypeVar("T")

MAX_ROLES = 32
MAX_COLLECTIONS = 100
_COLLECTION_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,255}\*?$")
ADMIN_PERMISSIONS = BUILTIN_ROLES["admin"].permissions


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

    ``None`` means every tenant: an installation admin who named no ``tenant``.
    """
    if tenant is None:
        principal = await authorize(request, action)
        if principal.tenant_name == DEFAULT_TENANT:
            return principal, None
        return principal, principal.tenant_id
    scope = await admit(request, action, tenant)
    return scope.principal, scope.tenant_id


async def own_roles(request: Request, principal: Principal) -> frozenset[str]:
    """The permissions the caller holds on its whole tenant (the ceiling of what it grants)."""
    _, roles = await tenant_rules(request, principal.tenant_id)
    return granted_permissions(principal, custom_roles=roles)


def check_grantable(ceiling: frozenset[str], roles: Iterable[Role]) -> None:
    """An admin cannot grant (or manage a holder of) a role beyond their own permissions."""
    beyond = sorted(role.name for role in roles if not can_grant(ceiling, role))
    if beyond:
        raise AuthorizationError(
            f"You cannot grant or manage roles beyond your own: {', '.join(beyond)}.",
            reason="beyond_own_roles",
        )


def roles_held(grants: Sequence[Grant], custom: Mapping[str, Role]) -> tuple[Role, ...]:
    """The roles behind grants (unknown, e.g. deleted custom roles, grant nothing)."""
    found = (role_named(grant.role, custom) for grant in grants)
    return tuple(role for role in found if role is not None)


def is_admin(grants: Sequence[Grant], custom: Mapping[str, Role]) -> bool:
    """Whether grants give every permission of the built-in ``admin`` role tenant-wide."""
    whole = [grant for grant in grants if grant.collections is None]
    return permissions_of(roles_held(whole, custom)) >= ADMIN_PERMISSIONS


def plain_name(value: str, field: str) -> str:
    """Refuse a name that looks like a secret (it would be refused by the audit log too)."""
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


def grant_collections(grants: Sequence[Grant]) -> list[str] | None:
    """The collections the grants are narrowed to (admin grants share one list)."""
    for grant in grants:
        if grant.collections is not None:
            return list(grant.collections)
    return None


def audit(
    request: Request,
    conn: Connection,
    principal: Principal,
    action: str,
    *,
    tenant_id: str,
    resource: str | None,
    details: Mapping[str, Any],
    outcome: str = "success",
    reason: str | None = None,
) -> None:
    """Append one admin event in the caller's transaction (it commits with the change)."""
    emit(
        conn,
        AuditEvent(
            action=action,
            outcome=outcome,
            actor=principal.id,
            tenant_id=tenant_id,
            resource=resource,
            reason=reason,
            details=dict(details),
        ),
        now=runtime(request).clock.now(),
    )


def forget_credentials(request: Request, *, subject: str | None = None) -> None:
    """After a commit: re-read live state now (the door caches it ≤ 0.5 s otherwise)."""
    forget(request, subject=subject)


def tenant_names(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, str]:
    return {tenant_id: tenant_by_id(conn, tenant_id).name for tenant_id in set(tenant_ids)}


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@contextmanager
def refusals_audited(
    request: Request,
    conn: Connection,
    principal: Principal,
    *,
    permission: str,
    tenant_id: str,
    resource: str,
    failure: tuple[str, Mapping[str, Any]] | None = None,
) -> Iterator[None]:
    """Record a refused change (beyond one's roles, last admin) and commit only that event.

    Wrap the checks that precede any write: on a refusal the transaction holds only
    the audit event, which ``CommitThenRaise`` keeps before the error is answered.
    """
    try:
        yield
    except AuthorizationError as exc:
        audit(
            request,
            conn,
            principal,
            "authz.denied",
            tenant_id=tenant_id,
            resource=resource,
            details={"permission": permission},
            outcome="denied",
            reason=str(exc.fields.get("reason") or "missing_permission"),
        )
        raise CommitThenRaise(exc) from None
    except Conflict as exc:
        if failure is None or exc.code != "last_admin":
            raise
        action, details = failure
        audit(
            request,
            conn,
            principal,
            action,
            tenant_id=tenant_id,
            resource=resource,
            details=details,
            outcome="failure",
            reason="last_admin",
        )
        raise CommitThenRaise(exc) from None
