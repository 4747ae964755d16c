"""Stored WebAuthn credentials, and an assertion checked against them (WebAuthn §7.2).

The pure verifier is ``factors.webauthn.verify_authentication``; this module finds the
credential record the response names, calls it with the challenge the caller took (single
use), and in the caller's transaction stores the new sign count (compare-and-set: two
answers with one count cannot both pass). Every refusal is recorded as
``webauthn.refused`` with its reason; a counter that went backwards is marked
``possible_clone`` and a changed backup-eligibility flag ``backup_eligibility_changed``.

Assurance comes from the authenticator's own flags only (``authn.assurance``): UV is
the second category, BE = 0 (device-bound) is what can reach ``aal3``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from bastion.audit import record
from bastion.authn.assurance import VerifiedFactor
from bastion.authn.enrollment import FactorRecord, Origin
from bastion.authn.webauthn_challenges import PendingChallenge
from bastion.errors import AssertionRefused, Conflict
from bastion.factors.webauthn import (
    Refusal,
    RelyingParty,
    StoredCredential,
    VerifiedRegistration,
    assertion_ids,
    b64url,
    user_handle_for,
    verify_authentication,
)
from bastion.identity.users import find_user_by_id
from bastion.storage import new_id
from bastion.storage.schema import factors

__all__ = [
    "KeyRecord",
    "KeyUse",
    "aal3_capable",
    "add_credential",
    "audit_refusal",
    "credential_by_id",
    "credentials_of",
    "unavailable_methods",
    "verify_key",
    "webauthn_unavailable",
]

WEBAUTHN = "webauthn"
# Refusals only the key's holder can cause: worth an administrator's attention.
_SUSPICIOUS = {
    Refusal.COUNTER_REGRESSION.value: "possible_clone",
    Refusal.BACKUP_ELIGIBILITY_CHANGED.value: "backup_eligibility_changed",
}


def unavailable_methods(rp: RelyingParty | None, methods: Iterable[str]) -> tuple[str, ...]:
    """The methods of ``methods`` this server cannot run: WebAuthn when it has no relying
    party (an IP-address public URL: browsers refuse WebAuthn there). A sign-in or step-up
    never offers them; its answer names them with ``webauthn_unavailable``'s reason."""
    return ("webauthn",) if rp is None and "webauthn" in methods else ()


def webauthn_unavailable() -> Conflict:
    return Conflict(
        "Security keys and passkeys need a domain name: set BASTION_PUBLIC_URL (or "
        "BASTION_WEBAUTHN_RP_ID and BASTION_WEBAUTHN_ORIGINS); browsers refuse WebAuthn "
        "on IP-address origins.",
        code="webauthn_unavailable",
    )


@dataclass(frozen=True)
class KeyRecord:
    """An active WebAuthn credential of a user."""

    factor_id: str
    user_id: str
    name: str
    stored: StoredCredential
    added_session_id: str | None


@dataclass(frozen=True)
class KeyUse:
    """A verified assertion: whose key, and the factor it proved."""

    key: KeyRecord
    factor: VerifiedFactor


def _key(row: Any) -> KeyRecord:
    return KeyRecord(
        factor_id=row.id,
        user_id=row.user_id,
        name=row.name,
        stored=StoredCredential.from_row(row._mapping),
        added_session_id=row.added_session_id,
    )


def _active() -> Any:
    return (factors.c.type == WEBAUTHN) & (factors.c.status == "active")


def credentials_of(
    conn: Connection, user_id: str, *, excluding_session: str | None = None
) -> list[KeyRecord]:
    """The user's active credentials (for a step-up, not those its own session added)."""
    rows = conn.execute(
        select(factors)
        .where(factors.c.user_id == user_id, _active())
        .order_by(factors.c.created_at)
    ).all()
    return [
        _key(row)
        for row in rows
        if excluding_session is None or row.added_session_id != excluding_session
    ]


def credential_by_id(conn: Connection, credential_id: bytes) -> KeyRecord | None:
    """The active credential with this id, whoever owns it (ids are unique across users)."""
    row = conn.execute(
        select(factors).where(factors.c.credential_id == b64url(credential_id), _active())
    ).first()
    return _key(row) if row is not None else None


def credential_owner(conn: Connection, credential: object) -> str | None:
    """The user whose active credential an assertion names (by its id alone, nothing
    verified), or None: unreadable or unknown. For counting a refused passkey answer
    against the account it tried (the risk engine), never for letting it in."""
    try:
        ids = assertion_ids(credential)
    except AssertionRefused:
        return None
    key = credential_by_id(conn, ids.credential_id)
    return key.user_id if key is not None else None


def credential_registered(conn: Connection, credential_id: bytes) -> bool:
    """Whether any factor of any user (pending or active) has this credential id."""
    found = conn.execute(
        select(factors.c.id).where(factors.c.credential_id == b64url(credential_id))
    ).first()
    return found is not None


def aal3_capable(conn: Connection, user_id: str, *, excluding_factor: str | None = None) -> bool:
    """Whether the user holds an active device-bound (BE = 0) credential: the factor that
    reaches ``aal3`` (with the password, or alone with user verification)."""
    rows = conn.execute(
        select(factors.c.id).where(
            factors.c.user_id == user_id, _active(), factors.c.backup_eligible.is_(False)
        )
    ).scalars()
    return any(factor_id != excluding_factor for factor_id in rows)


def add_credential(
    conn: Connection,
    *,
    user_id: str,
    name: str,
    verified: VerifiedRegistration,
    now: datetime,
    origin: Origin,
) -> FactorRecord:
    """Store a verified registration as an active factor (with where it was added)."""
    factor_id = new_id("fac")
    conn.execute(
        insert(factors).values(
            id=factor_id,
            user_id=user_id,
            type=WEBAUTHN,
            name=name,
            status="active",
            sealed_secret=None,
            created_at=now,
            activated_at=now,
            **verified.factor_columns(),
            **origin.columns(),
        )
    )
    return FactorRecord(
        factor_id,
        WEBAUTHN,
        name,
        "active",
        now,
        None,
        origin,
        activated_at=now,
        backup_eligible=verified.backup_eligible,
    )


def audit_refusal(
    conn: Connection,
    refused: AssertionRefused,
    *,
    key: KeyRecord | None,
    user_id: str | None,
    ceremony: str,
    now: datetime,
) -> None:
    actor = key.user_id if key is not None else user_id
    user = find_user_by_id(conn, actor) if actor is not None else None
    details: dict[str, Any] = {"ceremony": ceremony}
    if key is not None:
        details["factor_id"] = key.factor_id
    if refused.reason in _SUSPICIOUS:
        details["suspicion"] = _SUSPICIOUS[refused.reason]
    if key is not None and user_id is not None and key.user_id != user_id:
        details["other_account"] = True  # another user's credential (not who it is)
        actor = user_id
        user = find_user_by_id(conn, user_id)
    record(
        conn,
        "webauthn.refused",
        outcome="failure",
        actor=actor,
        tenant_id=user.tenant_id if user is not None else None,
        resource=f"user:{actor}" if actor else None,
        reason=refused.reason,
        details=details,
        now=now,
    )


def verify_key(
    conn: Connection,
    rp: RelyingParty,
    *,
    credential: Mapping[str, Any],
    pending: PendingChallenge,
    user_id: str | None,
    ceremony: str,
    now: datetime,
    excluding_session: str | None = None,
) -> KeyUse:
    """Verify an assertion against the credential it names and store its sign count.

    ``user_id``: the account signing in (second factor, step-up); ``None`` for a passkey
    sign-in, where the credential (and its user handle) say whose account it is.
    Raises ``AssertionRefused`` (recorded as ``webauthn.refused``).
    """
    key: KeyRecord | None = None
    try:
        ids = assertion_ids(credential)
        key = credential_by_id(conn, ids.credential_id)
        usable = (
            key is not None
            and (user_id is None or key.user_id == user_id)
            and (excluding_session is None or key.added_session_id != excluding_session)
        )
        if key is None or not usable:
            raise AssertionRefused(
                Refusal.UNKNOWN_CREDENTIAL.value,
                "This security key or passkey is not registered to this account.",
            )
        verified = verify_authentication(
            credential=credential,
            stored=key.stored,
            user_handle=user_handle_for(key.user_id),
            rp=rp,
            expected_challenge=pending.challenge,
            allow_credentials=pending.allow,
            require_user_verification=pending.user_verification,
        )
        # Compare-and-set: a concurrent answer with the same count loses.
        changed = conn.execute(
            update(factors)
            .where(
                factors.c.id == key.factor_id,
                factors.c.replay_counter == key.stored.sign_count,
            )
            .values(replay_counter=verified.sign_count, last_used_at=now)
        ).rowcount
        if changed != 1:
            raise AssertionRefused(
                Refusal.COUNTER_REGRESSION.value,
                "The security key's signature counter did not grow: possible replay.",
            )
    except AssertionRefused as refused:
        audit_refusal(conn, refused, key=key, user_id=user_id, ceremony=ceremony, now=now)
        raise
    factor = VerifiedFactor.webauthn(
        backup_eligible=verified.backup_eligible, user_verified=verified.user_verified
    )
    return KeyUse(key, factor)
