"""Exported checkpoints (reading them back), the cadence check, and the verification walk
against exported checkpoints, in small batches so every boundary is crossed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from tests.support.audit import audit_database, sign, verifier

from bastion.audit import (
    AuditChainBroken,
    AuditEvent,
    Checkpoint,
    Checkpointer,
    CheckpointExporter,
    ExportedCheckpoint,
    InvalidCheckpointExport,
    StoredEvent,
    chain_id,
    checkpoint_message,
    emit,
    export_record,
    link_hash,
    read_anchors,
    verify_chain,
    write_checkpoint,
)
from bastion.audit.anchors import Anchors
from bastion.audit.cadence import MAX_GAPS, Cadence
from bastion.audit.chain import encode_signature
from bastion.clock import ManualClock
from bastion.storage import Database
from bastion.storage.schema import audit_checkpoints, audit_events

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = audit_database(tmp_path / "t.db", created_at=T0)
    yield database
    database.dispose()


def append(db: Database, count: int, *, start: datetime, every: timedelta) -> None:
    with db.begin() as conn:
        for n in range(count):
            event = AuditEvent("tenant.created", "success", "usr_1", None, details={"name": "x"})
            emit(conn, event, now=start + n * every)


def checkpoint(db: Database, at: datetime) -> Checkpoint:
    with db.begin() as conn:
        made = write_checkpoint(conn, signer=sign, now=at)
    assert made is not None
    return made


def anchors_of(db: Database, *checkpoints: Checkpoint) -> Anchors:
    with db.read() as conn:
        chain = chain_id(conn)
    assert chain is not None
    return read_anchors("\n".join(export_record(c, chain=chain) for c in checkpoints))


# -- reading an export ----------------------------------------------------------------------

RECORD = export_record(Checkpoint(4, "a" * 64, T0, "kid-1", b"s" * 64), chain="c" * 64)


def test_one_checkpoint_pretty_printed_or_a_list_reads() -> None:
    pretty = json.dumps(json.loads(RECORD), indent=2)
    assert [e.seq for e in read_anchors(pretty).checkpoints] == [4]
    listed = json.dumps([json.loads(RECORD), {**json.loads(RECORD), "seq": 9}])
    assert [e.seq for e in read_anchors(listed).checkpoints] == [4, 9]


def test_syslog_lines_and_unrelated_lines_read() -> None:
    text = (
        "Dec  1 10:00:00 host sshd[1]: Accepted publickey for ops\n"
        f"Dec  1 10:05:00 host bastion-audit: {RECORD}\x00\n"
        f"{RECORD}\n"  # delivered twice (a retry): counted once
    )
    anchors = read_anchors(text)
    assert [(e.seq, e.line) for e in anchors.checkpoints] == [(4, 2)]
    assert anchors.unreadable == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"hash": "A" * 64}, "hash is not"),
        ({"seq": True}, "seq is not"),
        ({"seq": 0}, "seq is not"),
        ({"at": "2026-12-01T10:00:00"}, "no time zone"),
        ({"at": "yesterday"}, "RFC 3339"),
        ({"v": 2}, "unknown record version"),
        ({"kid": ""}, "kid"),
        ({"signature": "!!"}, "signature"),
    ],
)
def test_a_damaged_line_is_named_and_counted(change: dict[str, object], reason: str) -> None:
    damaged = json.dumps({**json.loads(RECORD), **change})
    anchors = read_anchors(RECORD.replace('"seq":4', '"seq":5') + "\n" + damaged + "\n")
    assert [e.seq for e in anchors.checkpoints] == [5]
    assert anchors.unreadable == 1
    assert anchors.notes[0].startswith("line 2: not a checkpoint record")
    assert reason in anchors.notes[0]


def test_nothing_usable_is_an_error() -> None:
    with pytest.raises(InvalidCheckpointExport, match="no checkpoint records"):
        read_anchors("")
    with pytest.raises(InvalidCheckpointExport, match="hash is not"):
        read_anchors(RECORD.replace('"hash":"' + "a" * 64, '"hash":"zz'))


# -- cadence --------------------------------------------------------------------------------


def test_cadence_reports_a_stretch_without_checkpoints_and_a_stale_tail() -> None:
    cadence = Cadence(max_gap=timedelta(minutes=10))
    minute = timedelta(minutes=1)
    for seq in range(1, 4):
        cadence.event(seq, T0 + seq * minute)
    cadence.checkpoint(3, T0 + 5 * minute)  # fine: waited 4 minutes
    for seq in range(4, 8):
        cadence.event(seq, T0 + seq * 10 * minute)
    cadence.checkpoint(7, T0 + 75 * minute)  # event 4 (at 40 min) waited 35 minutes
    cadence.event(8, T0 + 80 * minute)
    cadence.finish(T0 + 90 * minute)  # waited exactly 10 minutes: not yet a gap
    assert [(g.first_seq, g.last_seq, g.waited) for g in cadence.gaps] == [(4, 7, 35 * minute)]
    assert "events 4 to 7" in cadence.gaps[0].describe()
    assert "waited 0h35m" not in cadence.gaps[0].describe()
    assert "waited 35m00s" in cadence.gaps[0].describe()

    stale = Cadence(max_gap=timedelta(minutes=10))
    stale.event(1, T0)
    stale.finish(T0 + timedelta(hours=3, minutes=5))
    [gap] = stale.gaps
    assert (gap.checkpointed_at, gap.waited) == (None, timedelta(hours=3, minutes=5))
    assert "covered by no checkpoint 3h05m later" in gap.describe()


def test_cadence_leaves_out_history_and_caps_what_it_keeps() -> None:
    recent = Cadence(max_gap=timedelta(minutes=10), since=T0 + timedelta(days=1))
    recent.event(1, T0)
    recent.checkpoint(1, T0 + timedelta(hours=1))  # a day before ``since``: history
    assert recent.count == 0
    many = Cadence(max_gap=timedelta(minutes=1))
    for seq in range(1, MAX_GAPS + 6):
        many.event(seq, T0 + seq * timedelta(hours=1))
        many.checkpoint(seq, T0 + seq * timedelta(hours=1) + timedelta(minutes=2))
    assert (len(many.gaps), many.count) == (MAX_GAPS, MAX_GAPS + 5)


# -- verification against exported checkpoints --------------------------------------------


def test_verify_against_matching_export_in_small_batches(db: Database) -> None:
    minute = timedelta(minutes=1)
    append(db, 3, start=T0, every=minute)
    first = checkpoint(db, T0 + 4 * minute)
    append(db, 4, start=T0 + 5 * minute, every=minute)
    second = checkpoint(db, T0 + 9 * minute)
    append(db, 3, start=T0 + 10 * minute, every=minute)
    third = checkpoint(db, T0 + 13 * minute)
    anchors = anchors_of(db, first, second, third)
    with db.read() as conn:
        report = verify_chain(
            conn, verifier=verifier, batch_size=2, anchors=anchors,
            max_gap=timedelta(minutes=10), now=T0 + 14 * minute,
        )  # fmt: skip
    assert report.ok, report.problem
    assert (report.events, report.exported_checked, report.checkpoints_checked) == (10, 3, 3)
    assert (report.gap_count, report.last_checkpoint) == (0, third)
    assert report.head_at == T0 + 12 * minute


def test_an_exported_hash_the_chain_no_longer_has_is_a_rewrite(db: Database) -> None:
    append(db, 6, start=T0, every=timedelta(seconds=1))
    made = checkpoint(db, T0 + timedelta(minutes=1))
    forged = ExportedCheckpoint(
        Checkpoint(3, "f" * 64, T0, "kid-1", sign(checkpoint_message(3, "f" * 64))[1]),
        anchors_of(db, made).chain,
        line=7,
    )
    anchors = Anchors((forged,), forged.chain)
    with db.read() as conn:
        report = verify_chain(conn, verifier=verifier, batch_size=2, anchors=anchors)
    assert (report.ok, report.first_broken_seq, report.events) == (False, 3, 2)
    assert "line 7" in (report.problem or "")


def test_an_exported_checkpoint_the_folder_key_did_not_sign_is_reported(db: Database) -> None:
    append(db, 4, start=T0, every=timedelta(seconds=1))
    made = checkpoint(db, T0 + timedelta(minutes=1))
    other = Checkpoint(made.seq, made.hash, made.at, "kid-2", made.signature)
    with db.read() as conn:
        report = verify_chain(conn, verifier=verifier, anchors=anchors_of(db, other))
    assert (report.ok, report.first_broken_seq) == (False, 4)
    assert "does not verify with key kid-2" in (report.problem or "")


def test_without_an_export_the_cadence_of_stored_checkpoints_is_checked(db: Database) -> None:
    append(db, 2, start=T0, every=timedelta(seconds=1))
    checkpoint(db, T0 + timedelta(hours=2))
    with db.read() as conn:
        report = verify_chain(conn, max_gap=timedelta(minutes=10), now=T0 + timedelta(hours=3))
    assert report.ok
    assert [(g.first_seq, g.last_seq) for g in report.gaps] == [(1, 2)]
    with pytest.raises(ValueError, match="needs 'now'"), db.read() as conn:
        verify_chain(conn, max_gap=timedelta(minutes=10))


# -- the checkpointer: one per worker process ------------------------------------------------


def test_each_worker_verifies_from_the_checkpoint_it_trusts(db: Database) -> None:
    clock = ManualClock(T0)
    first = Checkpointer(db, clock=clock, exporter=CheckpointExporter([]))
    second = Checkpointer(db, clock=clock, exporter=CheckpointExporter([]))
    append(db, 5, start=T0, every=timedelta(seconds=1))
    made = first.run(signer=sign)
    assert made is not None
    assert first.trusted == made
    append(db, 5, start=T0 + timedelta(minutes=1), every=timedelta(seconds=1))
    by_second = second.run(signer=sign)
    assert by_second is not None
    assert by_second.seq == 10
    assert first.run(signer=sign) is None  # nothing new: the other worker signed it
    assert first.trusted == by_second  # verified from seq 5 to 10, so trusted from now on

    # Event 10 rewritten, its hash recomputed and the stored checkpoint re-signed.
    with db.begin() as conn:
        for statement in ("DROP TRIGGER audit_events_no_update",
                          "DROP TRIGGER audit_checkpoints_no_update"):  # fmt: skip
            conn.execute(text(statement))
        event = StoredEvent.from_row(
            conn.execute(select(audit_events).where(audit_events.c.seq == 10)).one()
        )
        record = {**event.record(), "details": {"name": "forged"}}
        digest = link_hash(event.prev_hash, record)
        conn.execute(
            update(audit_events).where(audit_events.c.seq == 10)
            .values(details=record["details"], hash=digest)
        )  # fmt: skip
        signature = encode_signature(sign(checkpoint_message(10, digest))[1])
        conn.execute(update(audit_checkpoints).values(hash=digest, signature=signature))
    for worker in (first, second):
        with pytest.raises(AuditChainBroken, match="rewritten"):
            worker.run(signer=sign)
