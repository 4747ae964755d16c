"""The audit log: ``record`` (the one way in), ``query`` and ``export_ndjson``.

Domain services call ``record(conn, action, …)`` inside the transaction of the change
it describes; ``emit`` appends an already built ``AuditEvent`` (batches, checkpoints).

There is no update or delete function, by construction, and the database refuses
UPDATE/DELETE on ``audit_events`` (migration 0001 installs triggers).

``emit`` appends inside the caller's transaction, so an event commits or rolls back
with the change it records. Writers are serialised: SQLite write transactions start
with ``BEGIN IMMEDIATE`` (``Database.begin()``), PostgreSQL takes a transaction-level
advisory lock. ``seq`` is assigned here as head + 1 under that lock (not by a database
sequence), so the chain has no gaps; the primary key on ``seq`` makes a forked chain
impossible even if a caller forgets the write transaction (the insert then fails).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, insert, select, text

from bastion.audit.chain import GENESIS_HASH, canonical_json, chain_record, link_hash
from bastion.audit.events import AuditEvent, Outcome
from bastion.errors import ValidationError
from bastion.metrics import count_audit_event
from bastion.storage.schema import audit_events
from bastion.storage.types import new_id

# pg_advisory_xact_lock key shared by every audit writer ("bastion" in ASCII).
ADVISORY_LOCK_KEY = 0x62617374696F6E
MAX_LIMIT = 1000


def lock_chain(conn: Connection) -> None:
    """Serialise audit writers until the end of the transaction (PostgreSQL only).

    On SQLite the write transaction (``BEGIN IMMEDIATE``) already holds the write lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


# Built once: per-call statement construction dominated emit's cost.
_HEAD = select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)
_INSERT = insert(audit_events)


def head(conn: Connection) -> tuple[int, str] | None:
    """``(seq, hash)`` of the newest event, or ``None`` for an empty log."""
    row = conn.execute(_HEAD).first()
    return None if row is None else (int(row.seq), str(row.hash))


def emit(conn: Connection, event: AuditEvent, *, now: datetime) -> str:
    """Append ``event`` to the chain inside the caller's transaction; return its id."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC 'now'")
    lock_chain(conn)
    latest = head(conn)
    seq, prev_hash = (1, GENESIS_HASH) if latest is None else (latest[0] + 1, latest[1])
    event_id = new_id("evt")
    at = now.astimezone(UTC)
    details = dict(event.details)
    record = chain_record(
        seq=seq,
        id=event_id,
        at=at,
        tenant_id=event.tenant_id,
        actor=event.actor,
        action=event.action,
        outcome=event.outcome,
        resource=event.resource,
        reason=event.reason,
        details=details,
    )
    conn.execute(
        _INSERT,
        {
            "seq": seq,
            "id": event_id,
            "at": at,
            "tenant_id": event.tenant_id,
            "actor": event.actor,
            "action": event.action,
            "outcome": event.outcome,
            "resource": event.resource,
            "reason": event.reason,
            "details": details,
            "prev_hash": prev_hash,
            "hash": link_hash(prev_hash, record),
        },
    )
    count_audit_event(event)  # metrics (bastion.metrics.tally.RULES)
    return event_id


def record(
    conn: Connection,
    action: str,
    *,
    actor: str | None,
    tenant_id: str | None,
    now: datetime,
    outcome: Outcome = "success",
    resource: str | None = None,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> str:
    """Build one event and append it inside the caller's transaction; return its id.

    The event commits or rolls back with the change it records. What a caller chose
    (names, addresses) is redacted rather than refused (``AuditEvent``), so recording
    fails only on a programming error or a database fault, and then the change fails
    with it.
    """
    event = AuditEvent(
        action=action,
        outcome=outcome,
        actor=actor,
        tenant_id=tenant_id,
        resource=resource,
        reason=reason,
        details=dict(details or {}),
    )
    return emit(conn, event, now=now)


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    id: str
    at: datetime
    tenant_id: str | None
    actor: str | None
    action: str
    outcome: str
    resource: str | None
    reason: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: Row[Any]) -> StoredEvent:
        return cls(
            seq=int(row.seq),
            id=row.id,
            at=row.at,
            tenant_id=row.tenant_id,
            actor=row.actor,
            action=row.action,
            outcome=row.outcome,
            resource=row.resource,
            reason=row.reason,
            details=dict(row.details or {}),
            prev_hash=row.prev_hash,
            hash=row.hash,
        )

    def record(self) -> dict[str, Any]:
        """The hashed fields (see ``chain.chain_record``)."""
        return chain_record(
            seq=self.seq,
            id=self.id,
            at=self.at,
            tenant_id=self.tenant_id,
            actor=self.actor,
            action=self.action,
            outcome=self.outcome,
            resource=self.resource,
            reason=self.reason,
            details=self.details,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of ``GET /admin/audit`` and of each NDJSON export line."""
        return {**self.record(), "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class QueryPage:
    events: tuple[StoredEvent, ...]
    next_after_seq: int | None  # pass as after_seq for the next page; None: last page


def _filtered(
    *,
    tenant_id: str | None,
    actor: str | None,
    action: str | None,
    outcome: str | None,
    resource: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    statement = select(audit_events)
    for column, value in (
        (audit_events.c.tenant_id, tenant_id),
        (audit_events.c.actor, actor),
        (audit_events.c.action, action),
        (audit_events.c.outcome, outcome),
        (audit_events.c.resource, resource),
    ):
        if value is not None:
            statement = statement.where(column == value)
    for moment in (since, until):
        if moment is not None and moment.tzinfo is None:
            raise ValidationError("since and until must carry a time zone.")
    if since is not None:
        statement = statement.where(audit_events.c.at >= since)
    if until is not None:
        statement = statement.where(audit_events.c.at < until)
    return statement


def query(
    conn: Connection,
    *,
    tenant_id: str | None,
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    resource: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    after_seq: int | None = None,
    newest_first: bool = False,
) -> QueryPage:
    """One page of events matching every given filter.

    ``tenant_id=None`` means every tenant: only an installation admin (default tenant)
    may ask for that; the route decides. ``since`` is inclusive, ``until`` exclusive.
    Pages follow ``seq``: oldest first, or newest first with ``newest_first``;
    ``after_seq`` continues after the given seq in that order.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}.")
    statement = _filtered(
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        outcome=outcome,
        resource=resource,
        since=since,
        until=until,
    )
    if newest_first:
        if after_seq is not None:
            statement = statement.where(audit_events.c.seq < after_seq)
        statement = statement.order_by(audit_events.c.seq.desc())
    else:
        if after_seq is not None:
            statement = statement.where(audit_events.c.seq > after_seq)
        statement = statement.order_by(audit_events.c.seq.asc())
    rows = conn.execute(statement.limit(limit + 1)).all()
    events = tuple(StoredEvent.from_row(row) for row in rows[:limit])
    more = len(rows) > limit
    return QueryPage(events, events[-1].seq if more and events else None)


def export_ndjson(
    conn: Connection,
    *,
    tenant_id: str | None,
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    resource: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = MAX_LIMIT,
) -> Iterator[bytes]:
    """Every matching event, oldest first, one canonical JSON object per line.

    Streams in pages of ``batch_size``; the connection must stay open while iterating.
    """
    after: int | None = None
    while True:
        page = query(
            conn,
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            outcome=outcome,
            resource=resource,
            since=since,
            until=until,
            limit=batch_size,
            after_seq=after,
        )
        for event in page.events:
            yield canonical_json(event.to_json()) + b"\n"
        if page.next_after_seq is None:
            return
        after = page.next_after_seq
