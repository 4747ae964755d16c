"""Signed checkpoints: the chain head signed with the server's key, and sent out.

A hash chain alone shows that rows were changed, unless the attacker recomputes
every hash from the change onwards. A checkpoint signs ``(seq, hash)`` of the head
with the token key ring's Ed25519 key (``KeyRing.sign``), which an attacker with
access to the database alone does not hold, so a rewritten chain no longer matches a
checkpoint. An attacker who can read the data folder holds the key too; against them
each checkpoint is also exported (``Checkpointer`` → ``audit.sink``) when it is made.

Written periodically by the server and by ``bastion audit checkpoint``. A checkpoint is
only written after the events since the previous checkpoint verify (since the last one
this process signed, when it signed one), so a tampered chain is never signed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select

from bastion.audit.anchors import export_record
from bastion.audit.chain import Checkpoint, checkpoint_message, decode_signature, encode_signature
from bastion.audit.log import head, lock_chain
from bastion.audit.sink import CheckpointExporter
from bastion.audit.verify import DEFAULT_BATCH, ChainReport, Verifier, verify_chain, verify_from
from bastion.clock import Clock
from bastion.errors import BastionError
from bastion.storage import Database
from bastion.storage.schema import audit_checkpoints, audit_events

# data -> (kid, signature); e.g. key_ring.sign
Signer = Callable[[bytes], tuple[str, bytes]]


class AuditChainBroken(BastionError):
    """The chain does not verify, so it must not be signed (a server-side alarm)."""

    status = 500
    code = "audit_chain_broken"
    title = "The audit chain is broken"

    def __init__(self, report: ChainReport) -> None:
        super().__init__(report.problem or self.title, first_broken_seq=report.first_broken_seq)
        self.report = report


def latest_checkpoint(conn: Connection) -> Checkpoint | None:
    row = conn.execute(
        select(audit_checkpoints).order_by(audit_checkpoints.c.seq.desc()).limit(1)
    ).first()
    if row is None:
        return None
    try:
        signature = decode_signature(row.signature)
    except ValueError:
        signature = b""
    return Checkpoint(int(row.seq), row.hash, row.at, row.kid, signature)


def write_checkpoint(
    conn: Connection,
    *,
    signer: Signer,
    now: datetime,
    verifier: Verifier | None = None,
    batch_size: int = DEFAULT_BATCH,
    trusted: Checkpoint | None = None,
) -> Checkpoint | None:
    """Sign the current head inside the caller's write transaction.

    Returns ``None`` when the log is empty or the head is already checkpointed.
    Raises ``AuditChainBroken`` when the events since the last checkpoint (all of
    them for the first checkpoint) do not verify. Pass ``verifier`` to also check
    the previous checkpoint's signature, and ``trusted`` (a checkpoint this process
    made, so not read back from the database) to verify from it instead: then a chain
    rewritten or cut short under a running server is refused too.
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC 'now'")
    lock_chain(conn)
    current = head(conn)
    if trusted is not None and (current is None or current[0] < trusted.seq):
        last = 0 if current is None else current[0]
        problem = (
            f"events from seq {last + 1} on were deleted: this server signed the chain up to "
            f"seq {trusted.seq}"
        )
        raise AuditChainBroken(ChainReport(False, 0, first_broken_seq=last + 1, problem=problem))
    if current is None:
        return None
    previous = latest_checkpoint(conn)
    if previous is not None and previous.seq >= current[0]:
        if trusted is None:
            return None
        report = verify_from(conn, trusted, verifier=verifier, batch_size=batch_size)
        if not report.ok:
            raise AuditChainBroken(report)
        return None
    start = trusted or previous
    report = (
        verify_chain(conn, verifier=verifier, batch_size=batch_size)
        if start is None
        else verify_from(conn, start, verifier=verifier, batch_size=batch_size)
    )
    if not report.ok or report.head_seq != current[0]:
        raise AuditChainBroken(report)
    seq, hash_hex = current
    kid, signature = signer(checkpoint_message(seq, hash_hex))
    at = now.astimezone(UTC)
    conn.execute(
        insert(audit_checkpoints).values(
            seq=seq, hash=hash_hex, at=at, kid=kid, signature=encode_signature(signature)
        )
    )
    return Checkpoint(seq, hash_hex, at, kid, signature)


def chain_id(conn: Connection) -> str | None:
    """The hash of the first event: names the chain in exported checkpoints."""
    row = conn.execute(select(audit_events.c.hash).where(audit_events.c.seq == 1)).first()
    return None if row is None else str(row.hash)


class Checkpointer:
    """Signs the chain head and exports each new checkpoint (one per process).

    ``run`` is what the server calls every ``CHECKPOINT_INTERVAL`` and at shutdown, and
    what ``bastion audit checkpoint`` calls. It remembers the last checkpoint it made and
    verifies the chain from there, not from the database's latest (which whoever can
    write the database could have forged). A sink's failure never fails ``run``: the
    exporter logs it and sends the checkpoint again at the next run.
    """

    def __init__(self, db: Database, *, clock: Clock, exporter: CheckpointExporter) -> None:
        self.db = db
        self.clock = clock
        self.exporter = exporter
        self._last: Checkpoint | None = None
        self._lock = threading.Lock()

    @property
    def trusted(self) -> Checkpoint | None:
        """The checkpoint the next run verifies from (None until this process made one)."""
        return self._last

    def run(self, *, signer: Signer, verifier: Verifier | None = None) -> Checkpoint | None:
        """Sign the head if something was appended, then deliver what waits for the sinks.

        Raises ``AuditChainBroken`` (after retrying the sinks) when the chain does not
        verify: it is not signed, and nothing new is exported.
        """
        with self._lock:
            try:
                with self.db.begin() as conn:
                    checkpoint = write_checkpoint(
                        conn, signer=signer, now=self.clock.now(), verifier=verifier,
                        trusted=self._last,
                    )  # fmt: skip
                    chain = chain_id(conn)
                    if checkpoint is None and self._last is not None:
                        # Nothing new, and the chain verified from our last checkpoint up to
                        # the head, which another worker may have signed since: start from
                        # there next time, so the walk stays short.
                        latest = latest_checkpoint(conn)
                        if latest is not None and latest.seq > self._last.seq:
                            self._last = latest
            except AuditChainBroken:
                self.exporter.export(None, None)
                raise
            if checkpoint is None or chain is None:
                self.exporter.export(None, None)
                return None
            self._last = checkpoint
            self.exporter.export(checkpoint.seq, export_record(checkpoint, chain=chain))
            return checkpoint
