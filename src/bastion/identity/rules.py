"""A tenant's own rules: its MFA / assurance policy document and its custom roles.

``authz`` defines and validates them (``Policy.from_document``,
``validate_custom_role``); this module stores and reads them, and
``load_tenant_rules`` loads both at once for a decision (the request door caches that ≤ 0.5 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, insert, select, update

from bastion.authz import Policy, Role
from bastion.errors import Conflict, NotFound
from bastion.storage import new_id
from bastion.storage.schema import custom_roles, policies


class TenantRules(NamedTuple):
    """What ``authz.decide`` reads besides the principal and the resource."""

    policy: Policy
    roles: Mapping[str, Role]  # the tenant's custom roles by name


def load_tenant_rules(conn: Connection, tenant_id: str) -> TenantRules:
    return TenantRules(load_policy(conn, tenant_id), custom_roles_of(conn, tenant_id))


# -- the policy document ------------------------------------------------------------------


def load_policy(conn: Connection, tenant_id: str) -> Policy:
    """The tenant's policy, or the secure defaults when none was stored."""
    row = conn.execute(select(policies.c.document).where(policies.c.tenant_id == tenant_id)).first()
    return Policy.from_document(row.document) if row else Policy()


def save_policy(conn: Connection, tenant_id: str, policy: Policy, *, now: datetime) -> None:
    document = policy.to_document()
    exists = conn.execute(
        select(policies.c.tenant_id).where(policies.c.tenant_id == tenant_id)
    ).first()
    if exists:
        conn.execute(
            update(policies)
            .where(policies.c.tenant_id == tenant_id)
            .values(document=document, updated_at=now)
        )
    else:
        conn.execute(
            insert(policies).values(tenant_id=tenant_id, document=document, updated_at=now)
        )


# -- custom roles -------------------------------------------------------------------------


def _role(row: Any) -> Role:
    return Role(
        name=row.name,
        description=row.description,
        permissions=frozenset(row.permissions),
        builtin=False,
    )


def custom_roles_of(conn: Connection, tenant_id: str) -> Mapping[str, Role]:
    """The tenant's custom roles by name."""
    rows = conn.execute(
        select(custom_roles)
        .where(custom_roles.c.tenant_id == tenant_id)
        .order_by(custom_roles.c.name)
    )
    return {row.name: _role(row) for row in rows}


def create_custom_role(conn: Connection, *, tenant_id: str, role: Role, now: datetime) -> Role:
    """Store a validated custom role; ``Conflict(role_exists)`` when the name is taken."""
    taken = conn.execute(
        select(custom_roles.c.id).where(
            custom_roles.c.tenant_id == tenant_id, custom_roles.c.name == role.name
        )
    ).first()
    if taken is not None:
        raise Conflict(f"Role '{role.name}' already exists.", code="role_exists")
    conn.execute(
        insert(custom_roles).values(
            id=new_id("rol"),
            tenant_id=tenant_id,
            name=role.name,
            description=role.description,
            permissions=sorted(role.permissions),
            created_at=now,
        )
    )
    return role


def delete_custom_role(conn: Connection, *, tenant_id: str, name: str) -> Role:
    """Remove a custom role; ``NotFound(role_not_found)`` when there is none."""
    row = conn.execute(
        select(custom_roles).where(
            custom_roles.c.tenant_id == tenant_id, custom_roles.c.name == name
        )
    ).first()
    if row is None:
        raise NotFound(f"No custom role named '{name}'.", code="role_not_found")
    conn.execute(delete(custom_roles).where(custom_roles.c.id == row.id))
    return _role(row)
