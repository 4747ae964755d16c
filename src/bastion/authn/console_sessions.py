"""The web console's server-side sessions (``bastion.console``).

The browser holds only an opaque random cookie value; the row is keyed by its SHA-256
and holds, sealed with the master key (AES-GCM, bound to the row), the Bastion
session's access and refresh tokens and the console's own state (CSRF secret, a sign-in
in progress, an action waiting for a step-up, one-time secrets to show once).

Lifetimes follow the assurance the session reached (NIST SP 800-63B-4 §2.2.3, §3.2.3:
aal2 1 h idle / 24 h, aal3 15 min idle / 12 h); a sign-in in progress and an
enrolment-only session are short. ``LIFETIMES`` is the table the docs show.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, or_, select, update

from bastion.sealing import Sealer, SealError
from bastion.storage.schema import console_sessions

__all__ = [
    "LIFETIMES",
    "ConsoleSession",
    "Lifetime",
    "claim_refresh",
    "create_console_session",
    "delete_console_session",
    "delete_user_console_sessions",
    "lifetime_for",
    "load_console_session",
    "purge_expired",
    "rotate_console_session",
    "save_state",
    "save_tokens",
    "touch",
]

COOKIE_BYTES = 32  # 256 bits of randomness in the cookie value
MAX_COOKIE = 128
TOUCH_EVERY = timedelta(seconds=15)  # last_seen_at is written at most this often
REFRESH_LEASE = timedelta(seconds=10)


@dataclass(frozen=True)
class Lifetime:
    idle: int  # seconds without a request after which the session ends
    absolute: int  # seconds after its creation at which it ends whatever happens


# stage "signin": password accepted, second factor pending (the transaction lives 5 min);
# "enrolment": an enrolment-only token (aal1), good for adding the first factor only.
LIFETIMES: dict[str, Lifetime] = {
    "signin": Lifetime(idle=300, absolute=300),
    "enrolment": Lifetime(idle=600, absolute=900),
    "aal1": Lifetime(idle=3600, absolute=86_400),
    "aal2": Lifetime(idle=3600, absolute=86_400),
    "aal3": Lifetime(idle=900, absolute=43_200),
}


def lifetime_for(stage: str, acr: str | None) -> Lifetime:
    """The lifetime of a session at ``stage`` (an active one: by its ``acr``)."""
    if stage == "active":
        return LIFETIMES[acr or "aal1"]
    return LIFETIMES[stage]


@dataclass(frozen=True)
class ConsoleSession:
    id: str
    user_id: str | None
    stage: str
    acr: str | None
    tokens: dict[str, Any]
    state: dict[str, Any]
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    idle_seconds: int

    def over(self, now: datetime) -> bool:
        """Past its absolute lifetime, or idle for longer than allowed."""
        idle_until = self.last_seen_at + timedelta(seconds=self.idle_seconds)
        return now >= self.expires_at or now >= idle_until


def session_key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8", "surrogateescape")).hexdigest()


def _seal(sealer: Sealer, what: str, session_id: str, value: dict[str, Any]) -> bytes:
    return sealer.seal(orjson.dumps(value), context=f"console:{what}:{session_id}".encode())


def _unseal(sealer: Sealer, what: str, session_id: str, blob: bytes) -> dict[str, Any]:
    data = orjson.loads(sealer.unseal(blob, context=f"console:{what}:{session_id}".encode()))
    if not isinstance(data, dict):
        raise SealError("The console session's sealed state is not an object.")
    return data


def create_console_session(
    conn: Connection,
    sealer: Sealer,
    *,
    stage: str,
    user_id: str | None,
    acr: str | None,
    tokens: dict[str, Any],
    state: dict[str, Any],
    now: datetime,
) -> tuple[str, ConsoleSession]:
    """A new session; returns the cookie value (shown to the browser only) and the row.
    Sessions past their absolute lifetime that were never loaded again go now."""
    purge_expired(conn, now=now)
    cookie = secrets.token_urlsafe(COOKIE_BYTES)
    key = session_key(cookie)
    lifetime = lifetime_for(stage, acr)
    session = ConsoleSession(
        id=key,
        user_id=user_id,
        stage=stage,
        acr=acr,
        tokens=tokens,
        state=state,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=lifetime.absolute),
        idle_seconds=lifetime.idle,
    )
    conn.execute(
        insert(console_sessions).values(
            id=key,
            user_id=user_id,
            stage=stage,
            acr=acr,
            tokens=_seal(sealer, "tokens", key, tokens),
            state=_seal(sealer, "state", key, state),
            created_at=now,
            last_seen_at=now,
            expires_at=session.expires_at,
            idle_seconds=lifetime.idle,
        )
    )
    return cookie, session


def load_console_session(
    conn: Connection, sealer: Sealer, cookie: str | None, *, now: datetime
) -> ConsoleSession | None:
    """The live session of ``cookie``; None when unknown, over (then deleted) or unreadable."""
    if not cookie or len(cookie) > MAX_COOKIE:
        return None
    key = session_key(cookie)
    row = conn.execute(select(console_sessions).where(console_sessions.c.id == key)).first()
    if row is None:
        return None
    try:
        session = ConsoleSession(
            id=key,
            user_id=row.user_id,
            stage=row.stage,
            acr=row.acr,
            tokens=_unseal(sealer, "tokens", key, row.tokens),
            state=_unseal(sealer, "state", key, row.state),
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            idle_seconds=row.idle_seconds,
        )
    except (SealError, orjson.JSONDecodeError):
        session = None
    if session is None or session.over(now):
        delete_console_session(conn, key)
        return None
    return session


def touch(conn: Connection, session: ConsoleSession, *, now: datetime) -> None:
    """Record activity (the idle timer restarts); written at most every ``TOUCH_EVERY``."""
    if now - session.last_seen_at >= TOUCH_EVERY:
        conn.execute(
            update(console_sessions)
            .where(console_sessions.c.id == session.id)
            .values(last_seen_at=now)
        )


def save_state(
    conn: Connection, sealer: Sealer, session: ConsoleSession, state: dict[str, Any]
) -> None:
    conn.execute(
        update(console_sessions)
        .where(console_sessions.c.id == session.id)
        .values(state=_seal(sealer, "state", session.id, state))
    )


def save_tokens(
    conn: Connection,
    sealer: Sealer,
    session: ConsoleSession,
    tokens: dict[str, Any],
    *,
    now: datetime,
    stage: str | None = None,
    acr: str | None = None,
    user_id: str | None = None,
) -> None:
    """New tokens (a refresh, a step-up); a new stage or acr also sets its lifetime,
    counted from the session's creation (a step-up does not extend the session)."""
    values: dict[str, Any] = {
        "tokens": _seal(sealer, "tokens", session.id, tokens),
        "refresh_lease_until": None,
    }
    if stage is not None or acr is not None:
        lifetime = lifetime_for(stage or session.stage, acr or session.acr)
        values.update(
            stage=stage or session.stage,
            acr=acr or session.acr,
            idle_seconds=lifetime.idle,
            expires_at=session.created_at + timedelta(seconds=lifetime.absolute),
            last_seen_at=now,
        )
    if user_id is not None:
        values["user_id"] = user_id
    conn.execute(
        update(console_sessions).where(console_sessions.c.id == session.id).values(**values)
    )


def claim_refresh(conn: Connection, session: ConsoleSession, *, now: datetime) -> bool:
    """True for the one request that may rotate the tokens now (a short lease): two
    requests presenting the same refresh token would look like token theft and end the
    whole Bastion session (refresh-token reuse detection)."""
    result = conn.execute(
        update(console_sessions)
        .where(
            console_sessions.c.id == session.id,
            or_(
                console_sessions.c.refresh_lease_until.is_(None),
                console_sessions.c.refresh_lease_until < now,
            ),
        )
        .values(refresh_lease_until=now + REFRESH_LEASE)
    )
    return result.rowcount == 1


def rotate_console_session(
    conn: Connection,
    sealer: Sealer,
    session: ConsoleSession,
    *,
    now: datetime,
    stage: str,
    acr: str | None,
    user_id: str | None,
    tokens: dict[str, Any],
    state: dict[str, Any],
) -> tuple[str, ConsoleSession]:
    """Replace the session by a new one with a new cookie value (after a sign-in step: a
    cookie planted before it is worth nothing after it)."""
    delete_console_session(conn, session.id)
    return create_console_session(
        conn, sealer, stage=stage, user_id=user_id, acr=acr, tokens=tokens, state=state, now=now
    )


def delete_console_session(conn: Connection, session_id: str) -> None:
    conn.execute(delete(console_sessions).where(console_sessions.c.id == session_id))


def delete_user_console_sessions(conn: Connection, user_id: str) -> int:
    result = conn.execute(delete(console_sessions).where(console_sessions.c.user_id == user_id))
    return int(result.rowcount)


def purge_expired(conn: Connection, *, now: datetime) -> int:
    result = conn.execute(delete(console_sessions).where(console_sessions.c.expires_at <= now))
    return int(result.rowcount)
