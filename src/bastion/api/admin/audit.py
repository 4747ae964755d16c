"""``GET /admin/audit``, ``/admin/audit/export`` (NDJSON) and ``/admin/audit/verify``.

Tenant-scoped: an admin sees the events of their tenant; an installation admin
(``default`` tenant) sees every event, or one tenant's with ``?tenant=``. Pages follow
``seq`` (newest first by default); ``next`` is the ``after`` of the next page.
Verification walks the whole chain (it is one chain for the installation) and checks
every signed checkpoint with the server's key ring; an admin of another tenant than the
default is shown whether it is intact and how many of their own tenant's events it
covers, never the installation's counts or positions (issue 11.13).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Connection

from bastion.api.admin.common import TenantParam, admit_all, now, read, write
from bastion.api.guard import door_router, runtime
from bastion.api.openapi import raises
from bastion.api.responses import AuditPage, ChainVerified
from bastion.audit import MAX_LIMIT, OUTCOMES, ChainReport, export_ndjson, query, verify_chain
from bastion.audit.access import record_export, record_verification, tenant_events, tenant_report
from bastion.errors import NotFound, ValidationError

router = door_router()
_Text = Annotated[str | None, Query(min_length=1, max_length=256)]


@dataclass(frozen=True)
class Filters:
    actor: str | None
    action: str | None
    outcome: str | None
    resource: str | None
    since: datetime | None
    until: datetime | None

    def query_args(self) -> dict[str, Any]:
        """The filters as keyword arguments of ``audit.query`` / ``audit.export_ndjson``."""
        return {
            "actor": self.actor,
            "action": self.action,
            "outcome": self.outcome,
            "resource": self.resource,
            "since": self.since,
            "until": self.until,
        }

    def described(self) -> dict[str, str]:
        """The filters an export used, for its audit event."""
        shown = {
            "actor": self.actor,
            "action": self.action,
            "outcome": self.outcome,
            "resource": self.resource,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {key: value for key, value in shown.items() if value is not None}


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"{name} must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z.", field=name
        ) from None
    if moment.tzinfo is None:
        raise ValidationError(f"{name} must carry a time zone (e.g. Z).", field=name)
    return moment


@dataclass(frozen=True)
class FilterParams:
    """The filter query parameters as sent; parsed only after the caller is admitted."""

    actor: _Text = None
    action: _Text = None
    outcome: _Text = None
    resource: _Text = None
    since: _Text = None
    until: _Text = None

    def parse(self) -> Filters:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValidationError(f"outcome must be one of {', '.join(OUTCOMES)}.", field="outcome")
        return Filters(
            self.actor,
            self.action,
            self.outcome,
            self.resource,
            _moment(self.since, "since"),
            _moment(self.until, "until"),
        )


_Filters = Annotated[FilterParams, Depends()]


@router.get(
    "/audit",
    response_model=AuditPage,
    responses=raises(NotFound),
    summary="Query the audit log (filters, cursor pagination)",
)
async def search(
    request: Request,
    filters: _Filters,
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
    after: int | None = Query(None, ge=0, description="The 'next' of the previous page."),
    order: Literal["asc", "desc"] = Query("desc"),
    tenant: TenantParam = None,
) -> dict[str, Any]:
    _, tenant_id = await admit_all(request, "audit.read", tenant)
    chosen = filters.parse()

    def work(conn: Connection) -> dict[str, Any]:
        page = query(
            conn,
            tenant_id=tenant_id,
            **chosen.query_args(),
            limit=limit,
            after_seq=after,
            newest_first=order == "desc",
        )
        return {"events": [event.to_json() for event in page.events], "next": page.next_after_seq}

    return await read(request, work)


@router.get(
    "/audit/export",
    summary="Export the audit log as NDJSON (aal3)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
        **raises(NotFound),
    },
)
async def export(
    request: Request,
    filters: _Filters,
    tenant: TenantParam = None,
) -> StreamingResponse:
    principal, tenant_id = await admit_all(request, "audit.export", tenant)
    chosen = filters.parse()
    rt = runtime(request)

    def lines() -> Iterator[bytes]:
        count = 0
        with rt.db.read() as conn:
            for line in export_ndjson(conn, tenant_id=tenant_id, **chosen.query_args()):
                count += 1
                yield line
        with rt.db.begin() as conn:
            record_export(
                conn,
                actor=principal.id,
                tenant_id=tenant_id or principal.tenant_id,
                scope_tenant=tenant_id,
                count=count,
                filters=chosen.described(),
                now=rt.clock.now(),
            )

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": "attachment; filename=audit.ndjson",
        },
    )


@router.get(
    "/audit/verify",
    response_model=ChainVerified,
    response_model_exclude_unset=True,
    summary="Verify the hash chain and signed checkpoints",
)
async def verify(request: Request) -> dict[str, Any]:
    principal, scope_tenant = await admit_all(request, "audit.read", None)
    rt = runtime(request)
    own = scope_tenant is not None  # None: an installation admin, who sees every count

    def check(kid: str, data: bytes, signature: bytes) -> None:
        rt.keyring.verify_signature(kid=kid, data=data, signature=signature)

    def walk(conn: Connection) -> tuple[ChainReport, int | None]:
        report = verify_chain(conn, verifier=check)
        return report, tenant_events(conn, report, principal.tenant_id) if own else None

    report, counted = await read(request, walk)

    def record(conn: Connection) -> None:
        record_verification(
            conn,
            actor=principal.id,
            tenant_id=principal.tenant_id,
            report=report,
            now=now(request),
            tenant_events=counted,
        )

    await write(request, record)
    if counted is not None:
        return tenant_report(report, counted)
    return {**report.to_json(), "scope": "installation"}
