"""``GET /admin/risk/events``: the risk engine's recent medium and high decisions.

Sign-in attempts it asked more of or refused, and sessions it challenged or ended
(docs/risk.md), newest first, with their reasons. Tenant-scoped like the audit log
(``audit.read``): an admin sees their tenant's; an installation admin (``default``
tenant) sees every tenant's, and the attempts on unknown usernames (no tenant), or one
tenant's with ``?tenant=``. ``after`` pages back (the ``next`` of the previous page: the
id of its last event); ``before`` keeps only events older than a date-time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request

from bastion.api.admin.common import TenantParam, admit_all, iso, read
from bastion.api.guard import door_router
from bastion.api.openapi import raises
from bastion.api.responses import RiskEvents
from bastion.errors import NotFound, ValidationError
from bastion.risk.store import FlaggedEvent, recent_flagged

router = door_router()
MAX_EVENTS = 1000


def event_view(event: FlaggedEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": iso(event.at),
        "kind": event.kind,
        "outcome": event.outcome,
        "tenant_id": event.tenant_id,
        "principal_id": event.principal_id,
        "ip": event.ip,
        "country": event.country,
        "score": event.score,
        "level": event.level,
        "decision": event.decision,
        "reasons": event.reasons,
    }


def _before(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationError(
            "before must be an ISO 8601 date-time with a time zone, such as 2026-01-31T12:00:00Z.",
            field="before",
        )
    return moment


@router.get(
    "/risk/events",
    response_model=RiskEvents,
    responses=raises(NotFound),
    summary="Recent medium and high risk decisions, with reasons",
)
async def events(
    request: Request,
    tenant: TenantParam = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 100,
    before: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[str | None, Query(max_length=64, pattern=r"^rsk_[A-Za-z0-9_-]+$")] = None,
) -> dict[str, Any]:
    _, tenant_id = await admit_all(request, "audit.read", tenant)
    until = _before(before)
    found = await read(
        request,
        lambda conn: recent_flagged(
            conn, tenant_id=tenant_id, limit=limit, before=until, after_id=after
        ),
    )
    page = [event_view(event) for event in found]
    return {"events": page, "next": page[-1]["id"] if len(page) == limit else None}
