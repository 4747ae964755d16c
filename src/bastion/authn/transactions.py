"""Login transactions: single use, short-lived, dead after too many wrong codes.

A transaction remembers which factors were verified so far; ``authn.login``
completes it when the computed assurance reaches ``required_acr``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update

from bastion.errors import AuthenticationError
from bastion.storage.schema import login_transactions

Purpose = Literal["login", "step_up"]


class InvalidTransaction(AuthenticationError):
    code = "invalid_transaction"
    title = "Invalid login transaction"

    def __init__(self) -> None:
        super().__init__(
            "The login transaction is unknown, expired or already used; sign in again."
        )


@dataclass(frozen=True)
class Transaction:
    id: str
    user_id: str
    purpose: Purpose
    session_id: str | None
    required_acr: str
    verified: tuple[Mapping[str, Any], ...]
    failed_attempts: int
    challenge: Mapping[str, Any]
    context: Mapping[str, Any]
    expires_at: datetime


def open_transaction(
    conn: Connection,
    *,
    user_id: str,
    purpose: Purpose,
    required_acr: str,
    verified: Sequence[Mapping[str, Any]],
    context: Mapping[str, Any],
    now: datetime,
    ttl: int,
    session_id: str | None = None,
) -> Transaction:
    tx_id = "ltx_" + secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=ttl)
    conn.execute(
        insert(login_transactions).values(
            id=tx_id,
            user_id=user_id,
            purpose=purpose,
            session_id=session_id,
            status="pending",
            verified=list(verified),
            required_acr=required_acr,
            failed_attempts=0,
            challenge={},
            context=dict(context),
            created_at=now,
            expires_at=expires_at,
        )
    )
    return Transaction(
        tx_id,
        user_id,
        purpose,
        session_id,
        required_acr,
        tuple(verified),
        0,
        {},
        dict(context),
        expires_at,
    )


def load_pending(conn: Connection, tx_id: str, *, now: datetime) -> Transaction:
    """The pending transaction, or InvalidTransaction (unknown, used, dead or expired)."""
    if not tx_id.startswith("ltx_") or len(tx_id) > 64:
        raise InvalidTransaction()
    row = conn.execute(select(login_transactions).where(login_transactions.c.id == tx_id)).first()
    if row is None or row.status != "pending":
        raise InvalidTransaction()
    if now >= row.expires_at:
        close(conn, tx_id, status="dead")
        raise InvalidTransaction()
    return Transaction(
        id=row.id,
        user_id=row.user_id,
        purpose=row.purpose,
        session_id=row.session_id,
        required_acr=row.required_acr,
        verified=tuple(row.verified),
        failed_attempts=row.failed_attempts,
        challenge=row.challenge or {},
        context=row.context or {},
        expires_at=row.expires_at,
    )


def record_failure(conn: Connection, tx: Transaction, *, max_attempts: int) -> bool:
    """Count a wrong code; returns True when this failure killed the transaction."""
    attempts = tx.failed_attempts + 1
    dead = attempts >= max_attempts
    conn.execute(
        update(login_transactions)
        .where(login_transactions.c.id == tx.id)
        .values(failed_attempts=attempts, status="dead" if dead else "pending")
    )
    return dead


def add_verified(conn: Connection, tx: Transaction, factor: Mapping[str, Any]) -> Transaction:
    verified = (*tx.verified, dict(factor))
    conn.execute(
        update(login_transactions)
        .where(login_transactions.c.id == tx.id)
        .values(verified=list(verified))
    )
    return Transaction(
        tx.id,
        tx.user_id,
        tx.purpose,
        tx.session_id,
        tx.required_acr,
        verified,
        tx.failed_attempts,
        tx.challenge,
        tx.context,
        tx.expires_at,
    )


def set_challenge(conn: Connection, tx: Transaction, challenge: Mapping[str, Any]) -> None:
    conn.execute(
        update(login_transactions)
        .where(login_transactions.c.id == tx.id)
        .values(challenge=dict(challenge))
    )


def claim_challenge(conn: Connection, tx: Transaction, key: str) -> Mapping[str, Any] | None:
    """Take the pending challenge ``key`` off the transaction (single use) and return it.

    The row is read again under a row lock (PostgreSQL; SQLite's write transaction
    serialises already), so two answers sent at once cannot both find the challenge."""
    row = conn.execute(
        select(login_transactions.c.challenge)
        .where(login_transactions.c.id == tx.id)
        .with_for_update()
    ).first()
    current: Mapping[str, Any] = (row.challenge if row is not None else None) or {}
    pending = current.get(key)
    if pending is not None:
        remaining = {k: v for k, v in current.items() if k != key}
        conn.execute(
            update(login_transactions)
            .where(login_transactions.c.id == tx.id)
            .values(challenge=remaining)
        )
    return pending if isinstance(pending, Mapping) else None


def close(conn: Connection, tx_id: str, *, status: Literal["completed", "dead"]) -> None:
    conn.execute(
        update(login_transactions).where(login_transactions.c.id == tx_id).values(status=status)
    )
