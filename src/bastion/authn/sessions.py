"""Sessions: one per successful login, the family of its rotating refresh tokens.

Access tokens carry ``sid``; revoking the session (logout, refresh-token reuse,
suspension, deprovisioning) kills every token of the family within the liveness
window of ``authn.request`` (≤ 1 s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update

from bastion.audit import record
from bastion.errors import InvalidGrant, InvalidToken
from bastion.identity.grants import grants_of
from bastion.identity.tenants import tenant_by_id
from bastion.identity.users import User, user_by_id
from bastion.storage import new_id
from bastion.storage.schema import refresh_tokens, sessions
from bastion.tokens import KeyRing, issue_access_token, new_secret, parse_secret

RESTRICTED_ENROLLMENT = "enrollment"


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    tenant_id: str
    acr: str
    amr: tuple[str, ...]
    auth_time: datetime
    restricted: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    ip: str | None = None  # where it signed in from

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


def _session(row: Any) -> Session:
    r = row._mapping
    return Session(
        id=r["id"],
        user_id=r["user_id"],
        tenant_id=r["tenant_id"],
        acr=r["acr"],
        amr=tuple(r["amr"]),
        auth_time=r["auth_time"],
        restricted=r["restricted"],
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        revoked_at=r["revoked_at"],
        ip=r["ip"],
    )


def session_by_id(conn: Connection, session_id: str) -> Session | None:
    row = conn.execute(select(sessions).where(sessions.c.id == session_id)).first()
    return _session(row) if row else None


def list_sessions(conn: Connection, user_id: str, *, now: datetime) -> list[Session]:
    rows = conn.execute(
        select(sessions)
        .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
        .order_by(sessions.c.created_at.desc())
    )
    return [s for s in map(_session, rows) if s.live(now)]


@dataclass(frozen=True)
class SessionIssuer:
    """What issuing a session's tokens needs: the signing keys and the token settings.

    ``keys`` returns the key ring in use now (a rotation replaces it while serving).
    """

    keys: Callable[[], KeyRing]
    issuer: str
    audience: str
    access_ttl: int
    refresh_ttl: int


@dataclass(frozen=True)
class IssuedTokens:
    """A session's tokens (RFC 6749 §5.1); ``api`` renders them. A restricted (enrollment)
    session has no refresh token."""

    session_id: str
    access_token: str
    expires_in: int
    acr: str
    amr: tuple[str, ...]
    refresh_token: str | None
    restricted: str | None = None
    # A remembered-device credential issued with these tokens (shown once; issue 15).
    device_credential: str | None = None


def _access_token(
    conn: Connection, issuer: SessionIssuer, session: Session, user: User, *, now: datetime
) -> str:
    tenant = tenant_by_id(conn, session.tenant_id)
    roles = [grant.role for grant in grants_of(conn, "user", user.id)]
    issued = issue_access_token(
        keyring=issuer.keys(),
        issuer=issuer.issuer,
        audience=issuer.audience,
        subject=user.id,
        tenant=tenant.name,
        roles=roles,
        acr=session.acr,
        amr=list(session.amr),
        auth_time=session.auth_time,
        session_id=session.id,
        ttl=issuer.access_ttl,
        now=now,
        extra={"preferred_username": user.username},
    )
    return issued.token


def _new_refresh_token(conn: Connection, session_id: str, *, now: datetime) -> str:
    secret = new_secret("refresh")
    conn.execute(
        insert(refresh_tokens).values(
            id=new_id("rtk"), session_id=session_id, token_hash=secret.hash, created_at=now
        )
    )
    return secret.value


def start_session(
    conn: Connection,
    issuer: SessionIssuer,
    user: User,
    *,
    acr: str,
    amr: Sequence[str],
    auth_time: datetime,
    now: datetime,
    restricted: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> IssuedTokens:
    """Create a session and its first tokens."""
    lifetime = issuer.access_ttl if restricted else issuer.refresh_ttl
    session = Session(
        id=new_id("ses"),
        user_id=user.id,
        tenant_id=user.tenant_id,
        acr=acr,
        amr=tuple(amr),
        auth_time=auth_time,
        restricted=restricted,
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
        revoked_at=None,
    )
    conn.execute(
        insert(sessions).values(
            id=session.id,
            user_id=user.id,
            tenant_id=user.tenant_id,
            acr=acr,
            amr=list(amr),
            auth_time=auth_time,
            restricted=restricted,
            created_at=now,
            expires_at=session.expires_at,
            ip=(ip or "")[:64] or None,
            user_agent=(user_agent or "")[:256] or None,
        )
    )
    return IssuedTokens(
        session_id=session.id,
        access_token=_access_token(conn, issuer, session, user, now=now),
        expires_in=issuer.access_ttl,
        acr=acr,
        amr=tuple(amr),
        refresh_token=None if restricted else _new_refresh_token(conn, session.id, now=now),
        restricted=restricted,
    )


@dataclass(frozen=True)
class RefreshOutcome:
    """New tokens, or the error to answer once the transaction (which may have revoked
    a session: ``revoked_session``) has committed."""

    tokens: IssuedTokens | None
    error: InvalidGrant | None
    revoked_session: str | None = None


def refresh(
    conn: Connection, issuer: SessionIssuer, presented: str, *, now: datetime
) -> RefreshOutcome:
    """Rotate a refresh token. Reuse of a rotated token revokes the whole family.

    Returns the error instead of raising so the caller commits the revocation and
    the audit event before answering ``invalid_grant``.
    """
    try:
        token_hash = parse_secret(presented, "refresh")
    except InvalidToken:
        return RefreshOutcome(None, InvalidGrant("The refresh token is malformed."))
    row = conn.execute(
        select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
    ).first()
    if row is None:
        return RefreshOutcome(None, InvalidGrant("The refresh token is not valid."))
    session = session_by_id(conn, row.session_id)
    assert session is not None
    if row.used_at is not None:
        if session.revoked_at is None:
            revoke_session(conn, session.id, reason="refresh_reuse", now=now)
        record(
            conn,
            "token.refresh_reuse_detected",
            outcome="denied",
            actor=session.user_id,
            tenant_id=session.tenant_id,
            resource=f"session:{session.id}",
            reason="refresh_token_reused",
            details={"session_id": session.id},
            now=now,
        )
        return RefreshOutcome(
            None,
            InvalidGrant("The refresh token was already used; the session has been revoked."),
            revoked_session=session.id,
        )
    user = user_by_id(conn, session.user_id)
    if not session.live(now) or not user.active:
        return RefreshOutcome(None, InvalidGrant("The session has ended; sign in again."))
    conn.execute(update(refresh_tokens).where(refresh_tokens.c.id == row.id).values(used_at=now))
    tokens = IssuedTokens(
        session_id=session.id,
        access_token=_access_token(conn, issuer, session, user, now=now),
        expires_in=issuer.access_ttl,
        acr=session.acr,
        amr=session.amr,
        refresh_token=_new_refresh_token(conn, session.id, now=now),
    )
    record(
        conn,
        "token.refreshed",
        actor=user.id,
        tenant_id=user.tenant_id,
        resource=f"session:{session.id}",
        details={"session_id": session.id},
        now=now,
    )
    return RefreshOutcome(tokens, None)


def revoke_other_sessions(
    conn: Connection, user_id: str, *, keep: str | None, reason: str, now: datetime
) -> int:
    """End every live session of the user but ``keep``; how many ended."""
    query = update(sessions).where(
        sessions.c.user_id == user_id,
        sessions.c.revoked_at.is_(None),
        sessions.c.expires_at > now,
    )
    if keep is not None:
        query = query.where(sessions.c.id != keep)
    return int(conn.execute(query.values(revoked_at=now, revoked_reason=reason)).rowcount)


def revoke_session(conn: Connection, session_id: str, *, reason: str, now: datetime) -> None:
    conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


def end_session(
    conn: Connection,
    session_id: str,
    *,
    reason: str,
    action: Literal["session.logout", "session.revoked", "token.revoked"],
    actor: str | None = None,
    now: datetime,
) -> Session | None:
    """Revoke one session and record why (``actor``: who ended it, by default its user).
    ``None`` when there is no such session."""
    session = session_by_id(conn, session_id)
    if session is None:
        return None
    revoke_session(conn, session_id, reason=reason, now=now)
    record(
        conn,
        action,
        actor=actor or session.user_id,
        tenant_id=session.tenant_id,
        resource=f"session:{session_id}",
        details={"session_id": session_id},
        now=now,
    )
    return session


def session_of_refresh_token(conn: Connection, presented: str) -> str | None:
    try:
        token_hash = parse_secret(presented, "refresh")
    except InvalidToken:
        return None
    row = conn.execute(
        select(refresh_tokens.c.session_id).where(refresh_tokens.c.token_hash == token_hash)
    ).first()
    return row.session_id if row else None
