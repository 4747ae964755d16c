"""Where a tenant's policy document lives; ``authz.Policy`` validates and reads it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from bastion.authz import Policy
from bastion.storage.schema import policies


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
