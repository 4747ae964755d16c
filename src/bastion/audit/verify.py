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
can rewrite the database could rewrite them too: pass the key ring's verifier. And
someone who can read the data folder holds that key ring too: they can delete the
tail with its checkpoints, or rewrite the chain and sign the forged head. Against them
pass ``anchors``, the checkpoints exported when they were made (``audit.anchors``):
they are trusted, the database's are not, so a rewritten or shortened chain no longer
matches them. ``max_gap`` reports events that waited too long for a checkpoint
(``audit.cadence``): a stretch of checkpoints deleted, or never exported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from bastion.audit.anchors import Anchors, ExportedCheckpoint
from bastion.audit.cadence import Cadence, CheckpointGap
from bastion.audit.chain import (
    GENESIS_HASH,
    Checkpoint,
    checkpoint_message,
    decode_signature,
    format_timestamp,
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
    checkpoints_checked: int = 0  # stored in the database
    signatures_verified: bool = False
    head_seq: int | None = None  # last verified event
    head_hash: str | None = None
    head_at: datetime | None = None
    exported_checked: int = 0  # exported checkpoints the chain matched
    last_checkpoint: Checkpoint | None = None  # the last trusted one the walk passed
    gaps: tuple[CheckpointGap, ...] = ()  # the first MAX_GAPS of ``gap_count``
    gap_count: int = 0

    @property
    def warnings(self) -> bool:
        return self.gap_count > 0

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


def check_exported(
    exported: ExportedCheckpoint, *, stored_hash: str, verifier: Verifier | None
) -> str | None:
    """Why the chain's hash at an exported (trusted) checkpoint's seq is not the one it
    vouches for, or its signature is not by this data folder's key; or None."""
    checkpoint = exported.checkpoint
    when = format_timestamp(checkpoint.at)
    if checkpoint.hash != stored_hash:
        return (
            f"the chain was rewritten: event {checkpoint.seq} no longer has the hash of the "
            f"checkpoint exported at {when} (line {exported.line}); its hashes were recomputed"
        )
    if verifier is not None:
        try:
            verifier(checkpoint.kid, checkpoint_message(checkpoint.seq, checkpoint.hash),
                     checkpoint.signature)  # fmt: skip
        except Exception:  # the verifier raises its own error type; any failure is failure
            return (
                f"the checkpoint exported at {when} for seq {checkpoint.seq} does not verify "
                f"with key {checkpoint.kid} of this data folder: the key was replaced or "
                "removed, or the export is corrupt"
            )
    return None


def check_chain_start(event: StoredEvent, *, chain: str) -> str | None:
    """Why the first event is not the one the export's chain starts with, or None."""
    if event.hash == chain:
        return None
    return (
        f"the chain does not start with the event the exported checkpoints name (chain "
        f"{chain[:12]}…): it was rewritten from its first event, or the export belongs to "
        "another installation"
    )


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


class _Broken(Exception):
    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.problem = seq, problem


@dataclass
class _Walk:
    """One pass over the events after ``after``, merging in the stored checkpoints and,
    when given, the exported ones (trusted) and the cadence check."""

    conn: Connection
    after: int
    prev_hash: str
    verifier: Verifier | None
    batch_size: int
    anchors: Anchors | None = None
    cadence: Cadence | None = None
    count: int = 0
    checked: int = 0
    exported: int = 0
    head_at: datetime | None = None
    last_trusted: Checkpoint | None = None

    def run(self, now: datetime | None) -> ChainReport:
        try:
            self._walk()
        except _Broken as broken:
            return self._report(broken)
        if self.cadence is not None and now is not None:
            self.cadence.finish(now)
        return self._report(None)

    def _walk(self) -> None:
        expected = self.after + 1
        stored = read_checkpoints(self.conn, after=self.after, batch_size=self.batch_size)
        pending = next(stored, None)
        exported = iter(() if self.anchors is None else self.anchors.checkpoints)
        anchor = next(exported, None)
        while anchor is not None and anchor.seq <= self.after:
            anchor = next(exported, None)
        for event in _events(self.conn, after=self.after, batch_size=self.batch_size):
            problem = check_event(event, expected_seq=expected, prev_hash=self.prev_hash)
            if problem is None and self.anchors is not None and event.seq == 1:
                problem = check_chain_start(event, chain=self.anchors.chain)
            if problem is not None:
                raise _Broken(expected, problem)
            if self.cadence is not None:
                self.cadence.event(event.seq, event.at)
            while anchor is not None and anchor.seq <= event.seq:
                problem = check_exported(anchor, stored_hash=event.hash, verifier=self.verifier)
                if problem is not None:
                    raise _Broken(anchor.seq, problem)
                self.exported += 1
                self._trust(anchor.checkpoint)
                anchor = next(exported, None)
            while pending is not None and pending.seq <= event.seq:
                problem = check_checkpoint(pending, stored_hash=event.hash, verifier=self.verifier)
                if problem is not None:
                    raise _Broken(pending.seq, problem)
                self.checked += 1
                if self.anchors is None:
                    self._trust(pending)
                pending = next(stored, None)
            self.prev_hash, self.head_at = event.hash, event.at
            expected, self.count = expected + 1, self.count + 1
        if anchor is not None:
            raise _Broken(
                expected,
                f"events from seq {expected} on were deleted: the checkpoint exported at "
                f"{format_timestamp(anchor.checkpoint.at)} vouches for the chain up to seq "
                f"{anchor.seq}",
            )
        if pending is not None:
            raise _Broken(
                expected,
                f"events from seq {expected} on were deleted: a checkpoint signed the chain "
                f"up to seq {pending.seq}",
            )

    def _trust(self, checkpoint: Checkpoint) -> None:
        self.last_trusted = checkpoint
        if self.cadence is not None:
            self.cadence.checkpoint(checkpoint.seq, checkpoint.at)

    def _report(self, broken: _Broken | None) -> ChainReport:
        head = self.after + self.count
        return ChainReport(
            ok=broken is None,
            events=self.count,
            first_broken_seq=None if broken is None else broken.seq,
            problem=None if broken is None else broken.problem,
            checkpoints_checked=self.checked,
            signatures_verified=self.verifier is not None,
            head_seq=head if head > 0 else None,
            head_hash=self.prev_hash if head > 0 else None,
            head_at=self.head_at,
            exported_checked=self.exported,
            last_checkpoint=self.last_trusted,
            gaps=() if self.cadence is None else tuple(self.cadence.gaps),
            gap_count=0 if self.cadence is None else self.cadence.count,
        )


def verify_chain(
    conn: Connection,
    *,
    verifier: Verifier | None = None,
    batch_size: int = DEFAULT_BATCH,
    anchors: Anchors | None = None,
    max_gap: timedelta | None = None,
    now: datetime | None = None,
    gaps_since: datetime | None = None,
) -> ChainReport:
    """Verify the whole chain and every checkpoint; report the first broken seq.

    ``anchors``: checkpoints exported when they were made (``--against``), trusted over
    the database's own. ``max_gap`` with ``now``: also report events that waited longer
    than that for a trusted checkpoint (the exported ones when given, else the stored),
    leaving out those that ended before ``gaps_since``.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    if max_gap is not None and now is None:
        raise ValueError("checking the cadence needs 'now'")
    walk = _Walk(
        conn, 0, GENESIS_HASH, verifier, batch_size, anchors,
        None if max_gap is None else Cadence(max_gap=max_gap, since=gaps_since),
    )  # fmt: skip
    return walk.run(now)


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
    report = _Walk(conn, checkpoint.seq, checkpoint.hash, verifier, batch_size).run(None)
    return replace(report, checkpoints_checked=report.checkpoints_checked + 1)
