"""Attacks on the audit log by someone with write access to the database.

The database refuses UPDATE and DELETE on the audit tables; an attacker with DB
access drops those triggers first, as these tests do, and then edits, deletes,
reorders, rewrites or truncates. Each attack is detected and reported with the
first broken seq.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from tests.support.audit import audit_database, sign, verifier

from bastion.audit import (
    AuditChainBroken,
    AuditEvent,
    ChainReport,
    InvalidAuditEvent,
    StoredEvent,
    checkpoint_message,
    emit,
    link_hash,
    verify_chain,
    write_checkpoint,
)
from bastion.audit.chain import encode_signature
from bastion.storage import Database
from bastion.storage.schema import audit_checkpoints, audit_events

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = audit_database(tmp_path / "t.db", created_at=T0)
    with database.begin() as conn:
        for n in range(1, 11):
            details = {"collection": "docs", "count": n}
            event = AuditEvent(
                "points.upserted", "success", "usr_1", "tnt_a", "collection:docs", details=details
            )
            emit(conn, event, now=T0 + timedelta(seconds=n))
    yield database
    database.dispose()


def drop_triggers(conn: Connection) -> None:
    """What an attacker with database access does first."""
    for table in ("audit_events", "audit_checkpoints"):
        for verb in ("update", "delete"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{verb}"))


def checkpoint(db: Database) -> None:
    with db.begin() as conn:
        assert write_checkpoint(conn, signer=sign, now=T0) is not None


def report(db: Database) -> ChainReport:
    with db.read() as conn:
        return verify_chain(conn, verifier=verifier, batch_size=3)


def row(conn: Connection, seq: int) -> StoredEvent:
    return StoredEvent.from_row(
        conn.execute(select(audit_events).where(audit_events.c.seq == seq)).one()
    )


def test_intact_chain_verifies(db: Database) -> None:
    checkpoint(db)
    result = report(db)
    assert result.ok
    assert (result.events, result.checkpoints_checked) == (10, 1)


@pytest.mark.parametrize("table", [audit_events, audit_checkpoints])
def test_database_refuses_update_of_audit_rows(db: Database, table: object) -> None:
    checkpoint(db)
    with pytest.raises(DBAPIError, match="append-only"), db.begin() as conn:
        conn.execute(update(table).values(hash="0" * 64))  # type: ignore[arg-type]


@pytest.mark.parametrize("table", [audit_events, audit_checkpoints])
def test_database_refuses_delete_of_audit_rows(db: Database, table: object) -> None:
    checkpoint(db)
    with pytest.raises(DBAPIError, match="append-only"), db.begin() as conn:
        conn.execute(delete(table))  # type: ignore[arg-type]
    assert report(db).ok


def test_edited_row_detected(db: Database) -> None:
    with db.begin() as conn:
        drop_triggers(conn)
        conn.execute(
            update(audit_events)
            .where(audit_events.c.seq == 5)
            .values(details={"collection": "docs", "count": 0})
        )
    result = report(db)
    assert not result.ok
    assert result.first_broken_seq == 5
    assert "modified" in (result.problem or "")
    assert result.events == 4


def test_edited_actor_detected(db: Database) -> None:
    with db.begin() as conn:
        drop_triggers(conn)
        conn.execute(update(audit_events).where(audit_events.c.seq == 1).values(actor="usr_2"))
    assert report(db).first_broken_seq == 1


def test_edited_and_rehashed_row_breaks_the_next_link(db: Database) -> None:
    with db.begin() as conn:
        drop_triggers(conn)
        event = row(conn, 5)
        forged = {**event.record(), "details": {"collection": "docs", "count": 0}}
        conn.execute(
            update(audit_events)
            .where(audit_events.c.seq == 5)
            .values(details=forged["details"], hash=link_hash(event.prev_hash, forged))
        )
    result = report(db)
    assert (result.ok, result.first_broken_seq) == (False, 6)
    assert "does not link" in (result.problem or "")


def test_deleted_middle_row_detected(db: Database) -> None:
    with db.begin() as conn:
        drop_triggers(conn)
        conn.execute(delete(audit_events).where(audit_events.c.seq == 5))
    result = report(db)
    assert (result.ok, result.first_broken_seq) == (False, 5)
    assert "missing" in (result.problem or "")


def test_deleted_first_row_detected(db: Database) -> None:
    with db.begin() as conn:
        drop_triggers(conn)
        conn.execute(delete(audit_events).where(audit_events.c.seq == 1))
    assert report(db).first_broken_seq == 1


def test_reordered_rows_detected(db: Database) -> None:
    """Swap the contents of two rows (everything but their position)."""
    columns = [c for c in audit_events.c if c.name != "seq"]
    with db.begin() as conn:
        drop_triggers(conn)
        four, six = (
            dict(conn.execute(select(*columns).where(audit_events.c.seq == s)).one()._mapping)
            for s in (4, 6)
        )
        conn.execute(delete(audit_events).where(audit_events.c.seq.in_([4, 6])))
        conn.execute(insert(audit_events).values(seq=4, **six))
        conn.execute(insert(audit_events).values(seq=6, **four))
    result = report(db)
    assert (result.ok, result.first_broken_seq) == (False, 4)


def test_reordered_rows_with_renumbered_seq_detected(db: Database) -> None:
    """Move event 7 before event 3 by renumbering seq values."""
    with db.begin() as conn:
        drop_triggers(conn)
        conn.execute(update(audit_events).where(audit_events.c.seq == 7).values(seq=1000))
        for seq in (6, 5, 4, 3):
            conn.execute(update(audit_events).where(audit_events.c.seq == seq).values(seq=seq + 1))
        conn.execute(update(audit_events).where(audit_events.c.seq == 1000).values(seq=3))
    assert report(db).first_broken_seq == 3


def rewrite_from(conn: Connection, start: int) -> None:
    """Change event ``start`` and recompute every hash after it: a consistent forgery."""
    prev = row(conn, start - 1).hash
    for seq in range(start, 11):
        event = row(conn, seq)
        record = event.record()
        if seq == start:
            record["details"] = {"collection": "docs", "count": 0}
        digest = link_hash(prev, record)
        conn.execute(
            update(audit_events)
            .where(audit_events.c.seq == seq)
            .values(details=record["details"], prev_hash=prev, hash=digest)
        )
        prev = digest


def test_rewritten_chain_detected_by_signed_checkpoint(db: Database) -> None:
    with db.begin() as conn:
        # A checkpoint signed when the log had 8 events.
        eight = row(conn, 8)
        kid, signature = sign(checkpoint_message(8, eight.hash))
        conn.execute(
            insert(audit_checkpoints).values(
                seq=8, hash=eight.hash, at=T0, kid=kid, signature=encode_signature(signature)
            )
        )
    with db.begin() as conn:
        drop_triggers(conn)
        rewrite_from(conn, 5)
    result = report(db)
    assert not result.ok
    assert result.first_broken_seq == 8
    assert "rewritten" in (result.problem or "")


def test_rewritten_chain_without_checkpoint_is_what_checkpoints_are_for(db: Database) -> None:
    with db.begin() as conn:
        drop_triggers(conn)
        rewrite_from(conn, 5)
    # Without a signed checkpoint a full, consistent rewrite is indistinguishable.
    assert report(db).ok


def test_rewritten_chain_with_forged_checkpoint_detected(db: Database) -> None:
    checkpoint(db)
    with db.begin() as conn:
        drop_triggers(conn)
        rewrite_from(conn, 5)
        conn.execute(update(audit_checkpoints).values(hash=row(conn, 10).hash))
    result = report(db)
    assert (result.ok, result.first_broken_seq) == (False, 10)
    assert "invalid signature" in (result.problem or "")


def test_truncated_tail_after_checkpoint_detected(db: Database) -> None:
    checkpoint(db)  # signs seq 10
    with db.begin() as conn:
        drop_triggers(conn)
        conn.execute(delete(audit_events).where(audit_events.c.seq >= 7))
    result = report(db)
    assert (result.ok, result.first_broken_seq) == (False, 7)
    assert "deleted" in (result.problem or "")
    assert result.events == 6


def test_checkpoint_refuses_to_sign_a_tampered_chain(db: Database) -> None:
    checkpoint(db)
    with db.begin() as conn:
        emit(conn, AuditEvent("tenant.created", "success", "usr_1", None, details={"name": "b"}),
             now=T0)  # fmt: skip
    with db.begin() as conn:
        drop_triggers(conn)
        conn.execute(update(audit_events).where(audit_events.c.seq == 11).values(actor="usr_9"))
    with db.begin() as conn, pytest.raises(AuditChainBroken) as exc:
        write_checkpoint(conn, signer=sign, now=T0, verifier=verifier)
    assert exc.value.report.first_broken_seq == 11


def test_a_secret_detail_is_stored_redacted(db: Database) -> None:
    api_key = "bst_sk_" + "A" * 43
    event = AuditEvent("api_key.created", "success", "usr_1", "tnt_a",
                       details={"key_id": api_key})  # fmt: skip
    assert api_key not in str(event)
    with db.begin() as conn:
        emit(conn, event, now=T0)
    with pytest.raises(InvalidAuditEvent, match="unregistered detail keys"):
        AuditEvent("login.failure", "failure", None, "tnt_a", details={"password": "hunter2"})
    with db.read() as conn:
        stored = [
            json.dumps(dict(r._mapping), default=str) for r in conn.execute(select(audit_events))
        ]
    assert not any("bst_" in line or "hunter2" in line for line in stored)
