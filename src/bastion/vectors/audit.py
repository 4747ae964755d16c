"""The data plane's audit events, recorded by the engine inside the write transaction of
the change they describe (one commit for both: a change is never left unrecorded, and a
change whose event cannot be written does not happen)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from bastion.audit import record
from bastion.storage import Database
from bastion.vectors.engine import CollectionSpec


def resource_of(collection: str) -> str:
    return f"collection:{collection}"


def audited(
    conn: Connection,
    action: str,
    tenant_id: str,
    collection: str,
    actor: str,
    now: datetime,
    **details: int | str | bool,
) -> None:
    """Record ``action`` on ``collection`` by ``actor`` in the caller's transaction."""
    record(
        conn,
        action,
        actor=actor,
        tenant_id=tenant_id,
        resource=resource_of(collection),
        details={"collection": collection, **details},
        now=now,
    )


def created_details(spec: CollectionSpec) -> dict[str, int | str | bool]:
    """``collection.created``'s details: the vector's size and distance, or for named
    vectors each as ``name:size:distance``."""
    if not spec.named:
        return {"size": spec.dim, "distance": spec.distance}
    return {"vectors": ",".join(f"{p.name}:{p.dim}:{p.distance}" for p in spec.named)}


def record_export(
    db: Database, *, tenant_id: str, collection: str, actor: str, count: int, now: datetime
) -> None:
    """``points.exported`` once an export stream ended (complete or cut short)."""
    with db.begin() as conn:
        audited(conn, "points.exported", tenant_id, collection, actor, now, count=count)
