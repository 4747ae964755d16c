"""WebAuthn challenges: ≥ 16 random bytes, single use, bound, expiring after 5 minutes.

Three kinds, all stored in the database so that every worker and replica sees the same
one (a challenge answered on one replica is gone on the others):

- a **registration**'s, bound to the user and the session that asked (one at a time per
  user: new options replace the old ones), in ``webauthn_challenges``;
- a **passkey sign-in**'s, bound to its transaction id (``ptx_…``; no user yet), there too;
- a **second factor or step-up**'s, bound to its login transaction, in
  ``login_transactions.challenge`` (``second_factor_challenge``).

``take_…`` deletes the challenge before the answer is looked at: a replay, an expired
challenge or one of another user or session finds nothing (``challenge_expired``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, delete, insert, select

from bastion.authn.transactions import Transaction, claim_challenge, set_challenge
from bastion.errors import AssertionRefused, AttestationRefused, WebAuthnRefused
from bastion.factors.webauthn import Refusal, b64url, b64url_decode, new_challenge
from bastion.storage import new_id
from bastion.storage.schema import webauthn_challenges

__all__ = [
    "CHALLENGE_TTL",
    "PendingChallenge",
    "issue_passkey_challenge",
    "issue_registration_challenge",
    "issue_transaction_challenge",
    "take_passkey_challenge",
    "take_registration_challenge",
    "take_transaction_challenge",
]

CHALLENGE_TTL = 300  # seconds (issue 13: challenges expire after 5 minutes)
Purpose = Literal["register", "passkey"]
_GONE = (
    "No challenge is pending for this answer (already used, expired or never issued): "
    "ask for new options."
)


@dataclass(frozen=True)
class PendingChallenge:
    """A challenge as issued, with what the options asked for."""

    challenge: bytes
    user_verification: bool  # the options required user verification
    allow: tuple[bytes, ...] = ()  # the allow list (second factor, step-up)
    id: str = ""


def _expired(error: type[WebAuthnRefused]) -> WebAuthnRefused:
    return error(Refusal.CHALLENGE_EXPIRED.value, _GONE)


def _prune(conn: Connection, now: datetime) -> None:
    conn.execute(delete(webauthn_challenges).where(webauthn_challenges.c.expires_at <= now))


def _issue(
    conn: Connection,
    *,
    row_id: str,
    purpose: Purpose,
    user_id: str | None,
    session_id: str | None,
    user_verification: bool,
    now: datetime,
) -> PendingChallenge:
    _prune(conn, now)
    challenge = new_challenge()
    conn.execute(
        insert(webauthn_challenges).values(
            id=row_id,
            purpose=purpose,
            user_id=user_id,
            session_id=session_id,
            challenge=b64url(challenge),
            details={"user_verification": user_verification},
            created_at=now,
            expires_at=now + timedelta(seconds=CHALLENGE_TTL),
        )
    )
    return PendingChallenge(challenge, user_verification, id=row_id)


def _take(conn: Connection, condition: Any, now: datetime) -> PendingChallenge | None:
    row = conn.execute(select(webauthn_challenges).where(condition)).first()
    if row is None:
        return None
    # Whoever deletes it holds it: of two answers sent at once, one finds nothing.
    taken = conn.execute(
        delete(webauthn_challenges).where(webauthn_challenges.c.id == row.id)
    ).rowcount
    if taken != 1 or now >= row.expires_at:
        return None
    details = row.details or {}
    return PendingChallenge(
        b64url_decode(row.challenge), bool(details.get("user_verification")), id=row.id
    )


def issue_registration_challenge(
    conn: Connection,
    *,
    user_id: str,
    session_id: str | None,
    user_verification: bool,
    now: datetime,
) -> PendingChallenge:
    """A registration challenge of ``user_id`` in ``session_id``; earlier ones are dropped."""
    conn.execute(
        delete(webauthn_challenges).where(
            webauthn_challenges.c.user_id == user_id,
            webauthn_challenges.c.purpose == "register",
        )
    )
    return _issue(
        conn,
        row_id=new_id("wch"),
        purpose="register",
        user_id=user_id,
        session_id=session_id,
        user_verification=user_verification,
        now=now,
    )


def take_registration_challenge(
    conn: Connection, *, user_id: str, session_id: str | None, now: datetime
) -> PendingChallenge:
    """The user's pending registration challenge from this session, now used up."""
    # Bound to the user and the session that asked: another session finds nothing.
    same_session = (
        webauthn_challenges.c.session_id.is_(None)
        if session_id is None
        else webauthn_challenges.c.session_id == session_id
    )
    taken = _take(
        conn,
        (webauthn_challenges.c.user_id == user_id)
        & (webauthn_challenges.c.purpose == "register")
        & same_session,
        now,
    )
    if taken is None:
        raise _expired(AttestationRefused)
    return taken


def issue_passkey_challenge(conn: Connection, *, now: datetime) -> PendingChallenge:
    """A passkey sign-in: its transaction id (``ptx_…``) and challenge (UV required)."""
    return _issue(
        conn,
        row_id="ptx_" + secrets.token_urlsafe(32),
        purpose="passkey",
        user_id=None,
        session_id=None,
        user_verification=True,
        now=now,
    )


def take_passkey_challenge(
    conn: Connection, transaction_id: str, *, now: datetime
) -> PendingChallenge:
    """The passkey transaction's challenge, now used up; ``challenge_expired`` otherwise."""
    if not transaction_id.startswith("ptx_") or len(transaction_id) > 64:
        raise _expired(AssertionRefused)
    taken = _take(
        conn,
        (webauthn_challenges.c.id == transaction_id) & (webauthn_challenges.c.purpose == "passkey"),
        now,
    )
    if taken is None:
        raise _expired(AssertionRefused)
    return taken


def issue_transaction_challenge(
    conn: Connection,
    tx: Transaction,
    *,
    allow: Sequence[bytes],
    user_verification: bool,
    now: datetime,
) -> PendingChallenge:
    """A second-factor or step-up challenge, kept on the login transaction (a new one
    replaces the old); it expires with the transaction or after 5 minutes."""
    challenge = new_challenge()
    expires_at = min(tx.expires_at, now + timedelta(seconds=CHALLENGE_TTL))
    set_challenge(
        conn,
        tx,
        {
            **tx.challenge,
            "webauthn": {
                "challenge": b64url(challenge),
                "allow": [b64url(item) for item in allow],
                "user_verification": user_verification,
                "expires_at": expires_at.isoformat(),
            },
        },
    )
    return PendingChallenge(challenge, user_verification, tuple(allow), id=tx.id)


def take_transaction_challenge(
    conn: Connection, tx: Transaction, *, now: datetime
) -> PendingChallenge:
    """The transaction's WebAuthn challenge, now used up; ``challenge_expired`` otherwise."""
    pending = claim_challenge(conn, tx, "webauthn")
    if pending is None:
        raise _expired(AssertionRefused)
    if now >= datetime.fromisoformat(str(pending["expires_at"])):
        raise _expired(AssertionRefused)
    return PendingChallenge(
        b64url_decode(str(pending["challenge"])),
        bool(pending.get("user_verification")),
        tuple(b64url_decode(str(item)) for item in pending.get("allow", ())),
        id=tx.id,
    )
