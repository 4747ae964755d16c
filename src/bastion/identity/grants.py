"""Role grants: which roles a user or service account holds in a tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, delete, func, insert, select

from bastion.domain import Grant
from bastion.storage import new_id
from bastion.storage.schema import role_grants, service_accounts, users

PrincipalKind = Literal["user", "service_account"]


def grants_of(conn: Connection, kind: PrincipalKind, principal_id: str) -> tuple[Grant, ...]:
    rows = conn.execute(
        select(role_grants.c.role, role_grants.c.tenant_id, role_grants.c.collections)
        .where(role_grants.c.principal_kind == kind, role_grants.c.principal_id == principal_id)
        .order_by(role_grants.c.created_at, role_grants.c.id)
    )
    return tuple(
        Grant(
            role=row.role,
            tenant_id=row.tenant_id,
            collections=tuple(row.collections) if row.collections is not None else None,
        )
        for row in rows
    )


def replace_grants(
    conn: Connection,
    kind: PrincipalKind,
    principal_id: str,
    *,
    tenant_id: str,
    roles: Sequence[str],
    collections: Sequence[str] | None,
    now: datetime,
) -> tuple[Grant, ...]:
    """Make ``roles`` (narrowed to ``collections``) the principal's whole set of grants."""
    conn.execute(
        delete(role_grants).where(
            role_grants.c.principal_kind == kind, role_grants.c.principal_id == principal_id
        )
    )
    for role in dict.fromkeys(roles):
        conn.execute(
            insert(role_grants).values(
                id=new_id("grt"),
                tenant_id=tenant_id,
                principal_kind=kind,
                principal_id=principal_id,
                role=role,
                collections=list(collections) if collections is not None else None,
                created_at=now,
            )
        )
    return grants_of(conn, kind, principal_id)


def remove_grants(conn: Connection, kind: PrincipalKind, principal_id: str) -> None:
    """Drop every grant of a principal (deprovisioning)."""
    conn.execute(
        delete(role_grants).where(
            role_grants.c.principal_kind == kind, role_grants.c.principal_id == principal_id
        )
    )


def grants_in_tenant(
    conn: Connection, kind: PrincipalKind, tenant_id: str
) -> dict[str, tuple[Grant, ...]]:
    """Every grant recorded in a tenant for principals of ``kind``, by principal id."""
    rows = conn.execute(
        select(
            role_grants.c.principal_id,
            role_grants.c.role,
            role_grants.c.tenant_id,
            role_grants.c.collections,
        )
        .where(role_grants.c.principal_kind == kind, role_grants.c.tenant_id == tenant_id)
        .order_by(role_grants.c.created_at, role_grants.c.id)
    )
    found: dict[str, list[Grant]] = {}
    for row in rows:
        found.setdefault(row.principal_id, []).append(
            Grant(
                role=row.role,
                tenant_id=row.tenant_id,
                collections=tuple(row.collections) if row.collections is not None else None,
            )
        )
    return {key: tuple(value) for key, value in found.items()}


def role_holders(conn: Connection, *, tenant_id: str, role: str) -> int:
    """How many live principals of the tenant hold ``role`` (one in use cannot be deleted)."""
    deleted_users = select(users.c.id).where(users.c.status == "deleted")
    deleted_accounts = select(service_accounts.c.id).where(service_accounts.c.status == "deleted")
    return int(
        conn.execute(
            select(func.count(func.distinct(role_grants.c.principal_id)))
            .select_from(role_grants)
            .where(
                role_grants.c.tenant_id == tenant_id,
                role_grants.c.role == role,
                role_grants.c.principal_id.not_in(deleted_users),
                role_grants.c.principal_id.not_in(deleted_accounts),
            )
        ).scalar_one()
    )


def grant_collections(grants: Sequence[Grant]) -> list[str] | None:
    """The collections the grants are narrowed to (a principal's grants share one list)."""
    for grant in grants:
        if grant.collections is not None:
            return list(grant.collections)
    return None
