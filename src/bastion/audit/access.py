"""Reading the audit log is itself recorded: an export (with how many events and the
filters used) and a verification of the chain (with its result)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection

from bastion.audit.log import record
from bastion.audit.verify import ChainReport


def record_export(
    conn: Connection,
    *,
    actor: str,
    tenant_id: str,
    scope_tenant: str | None,
    count: int,
    filters: Mapping[str, str],
    now: datetime,
) -> None:
    """``audit.exported``: ``scope_tenant`` is the tenant exported (None: every tenant)."""
    record(
        conn,
        "audit.exported",
        actor=actor,
        tenant_id=tenant_id,
        resource=f"tenant:{scope_tenant}" if scope_tenant else "audit",
        details={"count": count, "filters": dict(filters)},
        now=now,
    )


def record_verification(
    conn: Connection, *, actor: str, tenant_id: str, report: ChainReport, now: datetime
) -> None:
    record(
        conn,
        "audit.verified",
        actor=actor,
        tenant_id=tenant_id,
        resource="audit",
        outcome="success" if report.ok else "failure",
        details={
            "ok": report.ok,
            "events": report.events,
            "first_broken_seq": report.first_broken_seq,
            "checkpoints_checked": report.checkpoints_checked,
        },
        now=now,
    )
