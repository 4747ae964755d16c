"""Signed checkpoints: the chain head signed with the server's key.

A hash chain alone shows that rows were changed, unless the attacker recomputes
every hash from the change onwards. A checkpoint signs ``(seq, hash)`` of the head
with the token key ring's Ed25519 key (``KeyRing.sign``), which an attacker with
database access does not hold, so a rewritten chain no longer matches a checkpoint.

Written periodically and by ``bastion audit checkpoint``. A checkpoint is only
written after the events since the previous checkpoint verify, so a tampered chain
is never signed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select

from bastion.audit.chain import Checkpoint, checkpoint_message, decode_signature, encode_signature
from bastion.audit.log import head, lock_chain
from bastion.audit.verify import DEFAULT_BATCH, ChainReport, Verifier, verify_chain, verify_from
from bastion.errors import BastionError
from bastion.storage.schema import audit_checkpoints

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
) -> Checkpoint | None:
    """Sign the current head inside the caller's write transaction.

    Returns ``None`` when the log is empty or the head is already checkpointed.
    Raises ``AuditChainBroken`` when the events since the last checkpoint (all of
    them for the first checkpoint) do not verify. Pass ``verifier`` to also check
    the previous checkpoint's signature.
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC 'now'")
    lock_chain(conn)
    current = head(conn)
    if current is None:
        return None
    previous = latest_checkpoint(conn)
    if previous is not None and previous.seq >= current[0]:
        return None
    report = (
        verify_chain(conn, verifier=verifier, batch_size=batch_size)
        if previous is None
        else verify_from(conn, previous, verifier=verifier, batch_size=batch_size)
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
