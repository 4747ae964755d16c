"""Tenants: isolated groups of users, service accounts and collections."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from bastion.errors import Conflict, NotFound, ValidationError
from bastion.storage import new_id
from bastion.storage.schema import tenants
from bastion.text import check_name

DEFAULT_TENANT = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    created_at: datetime


def _row(row: object) -> Tenant:
    return Tenant(id=row.id, name=row.name, created_at=row.created_at)  # type: ignore[attr-defined]


def validate_tenant_name(name: str) -> str:
    check_name(name, field="name")
    if not _NAME.fullmatch(name):
        raise ValidationError(
            "Tenant names are 1 to 63 characters: lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit.",
            field="name",
        )
    return name


def create_tenant(conn: Connection, name: str, *, now: datetime) -> Tenant:
    validate_tenant_name(name)
    if conn.execute(select(tenants.c.id).where(tenants.c.name == name)).first():
        raise Conflict(f"Tenant '{name}' already exists.", code="tenant_exists")
    tenant = Tenant(id=new_id("ten"), name=name, created_at=now)
    conn.execute(insert(tenants).values(id=tenant.id, name=name, created_at=now))
    return tenant


def ensure_default_tenant(conn: Connection, *, now: datetime) -> Tenant:
    found = tenant_by_name(conn, DEFAULT_TENANT)
    return found or create_tenant(conn, DEFAULT_TENANT, now=now)


def tenant_by_name(conn: Connection, name: str) -> Tenant | None:
    row = conn.execute(select(tenants).where(tenants.c.name == name)).first()
    return _row(row) if row else None


def require_tenant(conn: Connection, name: str) -> Tenant:
    found = tenant_by_name(conn, name)
    if found is None:
        raise NotFound(f"Tenant '{name}' does not exist.", code="tenant_not_found")
    return found


def tenant_by_id(conn: Connection, tenant_id: str) -> Tenant:
    row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).first()
    if row is None:
        raise NotFound("Tenant not found.", code="tenant_not_found")
    return _row(row)


def list_tenants(conn: Connection) -> list[Tenant]:
    return [_row(r) for r in conn.execute(select(tenants).order_by(tenants.c.name))]
