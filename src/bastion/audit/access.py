"""Reading the audit log is itself recorded: an export (with how many events and the
filters used) and a verification of the chain (with its result).

A tenant's admin sees a verification in their tenant's terms (``tenant_report``, issue
11.13): whether the installation's one chain is intact, and how many of *their* tenant's
events it covers, never the installation's event count, checkpoint count or positions
(each would tell the size and activity of the other tenants)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from bastion.audit.log import record
from bastion.audit.verify import ChainReport
from bastion.storage.schema import audit_events

BROKEN_FOR_A_TENANT = (
    "The installation's audit chain does not verify; its administrators (default tenant) "
    "see where and why."
)


def tenant_events(conn: Connection, report: ChainReport, tenant_id: str) -> int:
    """How many of ``tenant_id``'s events the verification covered."""
    if report.head_seq is None:
        return 0
    counted = conn.execute(
        select(func.count())
        .select_from(audit_events)
        .where(audit_events.c.tenant_id == tenant_id, audit_events.c.seq <= report.head_seq)
    ).scalar_one()
    return int(counted)


def tenant_report(report: ChainReport, events: int) -> dict[str, Any]:
    """The body of ``GET /admin/audit/verify`` for an admin of one tenant."""
    body: dict[str, Any] = {
        "ok": report.ok,
        "events": events,
        "signatures_verified": report.signatures_verified,
        "scope": "tenant",
    }
    if not report.ok:
        body["problem"] = BROKEN_FOR_A_TENANT
    return body


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
    conn: Connection,
    *,
    actor: str,
    tenant_id: str,
    report: ChainReport,
    now: datetime,
    tenant_events: int | None = None,
) -> None:
    """``audit.verified``; with ``tenant_events`` (a tenant admin's verification) only what
    that admin was shown, since they can read this event."""
    details: dict[str, Any] = {
        "ok": report.ok,
        "events": report.events,
        "first_broken_seq": report.first_broken_seq,
        "checkpoints_checked": report.checkpoints_checked,
    }
    if tenant_events is not None:
        details = {"ok": report.ok, "events": tenant_events}
    record(
        conn,
        "audit.verified",
        actor=actor,
        tenant_id=tenant_id,
        resource="audit",
        outcome="success" if report.ok else "failure",
        details=details,
        now=now,
    )
