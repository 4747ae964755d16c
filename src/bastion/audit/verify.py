"""Verify the audit chain: find the first broken link (``bastion audit verify``,
``GET /admin/audit/verify``).

The walk reads events in ``seq`` order, ``batch_size`` rows at a time (memory stays
flat for millions of rows), and merges the signed checkpoints in. It detects:

- an edited row: its recomputed hash differs from the stored ``hash``;
- a deleted row: a gap in ``seq`` (``emit`` assigns seq without gaps);
- reordered or swapped rows: ``prev_hash`` does not match the previous row's hash
  (and ``seq`` is inside the hash);
- a chain rewritten from some point with recomputed hashes: a signed checkpoint no
  longer matches the stored hash at its seq;
- a deleted tail: a checkpoint names a seq beyond the last event;
- a forged checkpoint: its signature does not verify (when a ``verifier`` is given).

Without a ``verifier`` checkpoints are still compared with the chain, but someone who
can rewrite the database could rewrite them too: pass the key ring's verifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, select

from bastion.audit.chain import (
    GENESIS_HASH,
    Checkpoint,
    checkpoint_message,
    decode_signature,
    link_hash,
)
from bastion.audit.log import StoredEvent
from bastion.storage.schema import audit_checkpoints, audit_events

# (kid, data, signature) -> None, raising when the signature does not verify; e.g.
# lambda kid, data, sig: key_ring.verify_signature(kid=kid, data=data, signature=sig)
Verifier = Callable[[str, bytes, bytes], None]
DEFAULT_BATCH = 2000


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int  # events verified before the first problem (all of them when ok)
    first_broken_seq: int | None = None
    problem: str | None = None
    checkpoints_checked: int = 0
    signatures_verified: bool = False
    head_seq: int | None = None  # last verified event
    head_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The body of ``GET /admin/audit/verify``."""
        body: dict[str, Any] = {
            "ok": self.ok,
            "events": self.events,
            "checkpoints_checked": self.checkpoints_checked,
            "signatures_verified": self.signatures_verified,
        }
        if not self.ok:
            body["first_broken_seq"] = self.first_broken_seq
            body["problem"] = self.problem
        return body


# -- pure checks ------------------------------------------------------------------------


def check_event(event: StoredEvent, *, expected_seq: int, prev_hash: str) -> str | None:
    """Why ``event`` does not continue a chain whose last hash is ``prev_hash``, or None."""
    if event.seq != expected_seq:
        if expected_seq == 1:
            return f"events before seq {event.seq} are missing (the log starts at seq 1)"
        return f"event {expected_seq} is missing (the next stored event is {event.seq})"
    if event.prev_hash != prev_hash:
        return (
            f"event {event.seq} does not link to the event before it (prev_hash mismatch): "
            "rows were deleted, inserted or reordered"
        )
    if link_hash(prev_hash, event.record()) != event.hash:
        return f"event {event.seq} was modified (its hash does not match its content)"
    return None


def check_checkpoint(
    checkpoint: Checkpoint, *, stored_hash: str, verifier: Verifier | None
) -> str | None:
    """Why ``checkpoint`` does not vouch for the event hash ``stored_hash``, or None."""
    if verifier is not None:
        try:
            verifier(
                checkpoint.kid,
                checkpoint_message(checkpoint.seq, checkpoint.hash),
                checkpoint.signature,
            )
        except Exception:  # the verifier raises its own error type; any failure is failure
            return f"the checkpoint at seq {checkpoint.seq} has an invalid signature"
    if checkpoint.hash != stored_hash:
        return (
            f"the chain was rewritten: event {checkpoint.seq} no longer has the hash "
            "signed by its checkpoint"
        )
    return None


# -- the walk ---------------------------------------------------------------------------


def _events(conn: Connection, *, after: int, batch_size: int) -> Iterator[StoredEvent]:
    while True:
        rows = conn.execute(
            select(audit_events)
            .where(audit_events.c.seq > after)
            .order_by(audit_events.c.seq)
            .limit(batch_size)
        ).all()
        for row in rows:
            yield StoredEvent.from_row(row)
        if len(rows) < batch_size:
            return
        after = int(rows[-1].seq)


def read_checkpoints(
    conn: Connection, *, after: int = 0, batch_size: int = DEFAULT_BATCH
) -> Iterator[Checkpoint]:
    """Stored checkpoints with ``seq > after`` in seq order (signatures decoded)."""
    while True:
        rows = conn.execute(
            select(audit_checkpoints)
            .where(audit_checkpoints.c.seq > after)
            .order_by(audit_checkpoints.c.seq)
            .limit(batch_size)
        ).all()
        for row in rows:
            try:
                signature = decode_signature(row.signature)
            except ValueError:
                signature = b""  # fails verification below
            yield Checkpoint(int(row.seq), row.hash, row.at, row.kid, signature)
        if len(rows) < batch_size:
            return
        after = int(rows[-1].seq)


def _walk(
    conn: Connection,
    *,
    after: int,
    prev_hash: str,
    verifier: Verifier | None,
    batch_size: int,
) -> ChainReport:
    expected, count, checked = after + 1, 0, 0
    checkpoints = read_checkpoints(conn, after=after, batch_size=batch_size)
    pending = next(checkpoints, None)
    signed = verifier is not None

    def broken(seq: int, problem: str) -> ChainReport:
        return ChainReport(
            False, count, seq, problem, checked, signed,
            expected - 1 if expected > 1 else None, prev_hash if expected > 1 else None,
        )  # fmt: skip

    for event in _events(conn, after=after, batch_size=batch_size):
        problem = check_event(event, expected_seq=expected, prev_hash=prev_hash)
        if problem is not None:
            return broken(expected, problem)
        while pending is not None and pending.seq <= event.seq:
            problem = check_checkpoint(pending, stored_hash=event.hash, verifier=verifier)
            if problem is not None:
                return broken(pending.seq, problem)
            checked += 1
            pending = next(checkpoints, None)
        prev_hash, expected, count = event.hash, expected + 1, count + 1
    if pending is not None:
        return broken(
            expected,
            f"events from seq {expected} on were deleted: a checkpoint signed the chain "
            f"up to seq {pending.seq}",
        )
    return ChainReport(
        True, count, None, None, checked, signed,
        expected - 1 if expected > 1 else None, prev_hash if expected > 1 else None,
    )  # fmt: skip


def verify_chain(
    conn: Connection, *, verifier: Verifier | None = None, batch_size: int = DEFAULT_BATCH
) -> ChainReport:
    """Verify the whole chain and every checkpoint; report the first broken seq."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    return _walk(conn, after=0, prev_hash=GENESIS_HASH, verifier=verifier, batch_size=batch_size)


def verify_from(
    conn: Connection,
    checkpoint: Checkpoint,
    *,
    verifier: Verifier | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> ChainReport:
    """Verify the events after a trusted ``checkpoint`` (the event it covers must match it).

    ``events`` counts the events after the checkpoint. Used before signing a new
    checkpoint, so a tampered chain is never signed.
    """
    row = conn.execute(select(audit_events).where(audit_events.c.seq == checkpoint.seq)).first()
    if row is None:
        return ChainReport(
            False, 0, checkpoint.seq, f"event {checkpoint.seq} (checkpointed) is missing"
        )
    event = StoredEvent.from_row(row)
    problem = check_checkpoint(checkpoint, stored_hash=event.hash, verifier=verifier)
    if problem is None and link_hash(event.prev_hash, event.record()) != event.hash:
        problem = f"event {event.seq} was modified (its hash does not match its content)"
    if problem is not None:
        return ChainReport(False, 0, checkpoint.seq, problem, 0, verifier is not None)
    report = _walk(
        conn,
        after=checkpoint.seq,
        prev_hash=checkpoint.hash,
        verifier=verifier,
        batch_size=batch_size,
    )
    return replace(report, checkpoints_checked=report.checkpoints_checked + 1)
