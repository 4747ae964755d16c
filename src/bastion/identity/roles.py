"""Custom roles of a tenant: named sets of registered permissions (``authz.Role``).

``authz.roles.validate_custom_role`` checks the input; this module stores and reads
them. The guard reads the same table (``api.guard._tenant_rules``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from bastion.authz import Role
from bastion.errors import Conflict, NotFound
from bastion.storage import new_id
from bastion.storage.schema import custom_roles


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
