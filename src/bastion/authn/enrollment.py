"""A user's stored authenticators: enrol, activate, list, remove, and verify at login.

The pure verifiers live in ``bastion.factors``; this module loads their state,
calls them and saves what changed (last TOTP step, used recovery code) in the
caller's transaction. Every factor and recovery-code sheet records where it was added
(``Origin``: session, address, user agent): a step-up never accepts one its own session
added (``excluding_session``), and ``/me/factors`` shows when and from where.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from bastion.errors import Conflict, InvalidCode, NotFound
from bastion.factors.recovery import (
    generate_recovery_codes,
    hash_recovery_code,
    verify_recovery_code,
)
from bastion.factors.totp import new_totp_secret, provisioning_uri, qr_svg, verify_totp
from bastion.sealing import Sealer, SealError
from bastion.storage import new_id
from bastion.storage.schema import factors, recovery_codes

MAX_PENDING_TOTP = 3
ISSUER = "Bastion"


@dataclass(frozen=True)
class Origin:
    """Where a factor or a recovery-code sheet was added from."""

    session_id: str | None
    ip: str | None = None
    user_agent: str | None = None

    def columns(self) -> dict[str, str | None]:
        """The ``added_…`` columns of a stored factor."""
        return {
            "added_session_id": self.session_id,
            "added_ip": (self.ip or "")[:64] or None,
            "added_user_agent": (self.user_agent or "")[:256] or None,
        }


@dataclass(frozen=True)
class FactorRecord:
    id: str
    type: str
    name: str
    status: str
    created_at: datetime
    last_used_at: datetime | None
    added: Origin = Origin(None)
    activated_at: datetime | None = None
    backup_eligible: bool | None = None  # WebAuthn: a synced passkey (True) or not (False)


def _record(row: Any) -> FactorRecord:
    added = Origin(row.added_session_id, row.added_ip, row.added_user_agent)
    return FactorRecord(
        row.id,
        row.type,
        row.name,
        row.status,
        row.created_at,
        row.last_used_at,
        added,
        row.activated_at,
        row.backup_eligible,
    )


def _context(factor_id: str) -> bytes:
    return b"bastion:totp:" + factor_id.encode()


def unreadable_seeds(conn: Connection, sealer: Sealer) -> list[str]:
    """Ids of the TOTP factors whose seed ``sealer`` does not unseal: sealed with another
    master key (``bastion migrate-data`` refuses to carry them under the wrong one)."""
    unreadable: list[str] = []
    rows = conn.execute(
        select(factors.c.id, factors.c.sealed_secret).where(factors.c.sealed_secret.is_not(None))
    )
    for factor_id, sealed in rows:
        try:
            sealer.unseal(sealed, context=_context(factor_id))
        except SealError:
            unreadable.append(factor_id)
    return unreadable


def list_factors(conn: Connection, user_id: str) -> list[FactorRecord]:
    rows = conn.execute(
        select(factors).where(factors.c.user_id == user_id).order_by(factors.c.created_at)
    )
    return [_record(r) for r in rows]


def unused_recovery_codes(
    conn: Connection, user_id: str, *, excluding_session: str | None = None
) -> dict[str, str]:
    """The unused codes (id -> hash); without those ``excluding_session`` made."""
    rows = conn.execute(
        select(
            recovery_codes.c.id, recovery_codes.c.code_hash, recovery_codes.c.added_session_id
        ).where(recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None))
    )
    return {
        row.id: row.code_hash
        for row in rows
        if excluding_session is None or row.added_session_id != excluding_session
    }


def login_methods(
    conn: Connection, user_id: str, *, excluding_session: str | None = None
) -> list[str]:
    """Second-factor methods this user can use now, strongest first; for a step-up, not
    with what the stepping-up session itself added (``excluding_session``)."""
    types = {
        f.type
        for f in list_factors(conn, user_id)
        if f.status == "active"
        and (excluding_session is None or f.added.session_id != excluding_session)
    }
    methods: list[str] = [method for method in ("webauthn", "totp") if method in types]
    if methods and unused_recovery_codes(conn, user_id, excluding_session=excluding_session):
        methods.append("recovery_code")
    return methods


def has_active_second_factor(conn: Connection, user_id: str) -> bool:
    return any(f.status == "active" for f in list_factors(conn, user_id))


def all_active_enrolled_in(conn: Connection, user_id: str, session_id: str) -> bool:
    """Whether every active factor of the user was enrolled in ``session_id``."""
    rows = conn.execute(
        select(factors.c.added_session_id).where(
            factors.c.user_id == user_id, factors.c.status == "active"
        )
    ).all()
    return bool(rows) and all(row.added_session_id == session_id for row in rows)


@dataclass(frozen=True)
class TotpEnrollment:
    factor_id: str
    secret: str
    otpauth_uri: str
    qr_svg: str


def enroll_totp(
    conn: Connection,
    sealer: Sealer,
    *,
    user_id: str,
    account_name: str,
    name: str,
    now: datetime,
    origin: Origin,
) -> TotpEnrollment:
    pending = [f for f in list_factors(conn, user_id) if f.type == "totp" and f.status == "pending"]
    if len(pending) >= MAX_PENDING_TOTP:
        conn.execute(delete(factors).where(factors.c.id == pending[0].id))
    factor_id = new_id("fac")
    secret = new_totp_secret()
    conn.execute(
        insert(factors).values(
            id=factor_id,
            user_id=user_id,
            type="totp",
            name=name,
            status="pending",
            sealed_secret=sealer.seal(secret.encode(), context=_context(factor_id)),
            public_data={},
            replay_counter=0,
            created_at=now,
            **origin.columns(),
        )
    )
    uri = provisioning_uri(secret=secret, account_name=account_name, issuer=ISSUER)
    return TotpEnrollment(factor_id, secret, uri, qr_svg(uri))


def _totp_row(conn: Connection, user_id: str, factor_id: str) -> Any:
    row = conn.execute(
        select(factors).where(
            factors.c.id == factor_id, factors.c.user_id == user_id, factors.c.type == "totp"
        )
    ).first()
    if row is None:
        raise NotFound("No such TOTP factor.", code="factor_not_found")
    return row


def activate_totp(
    conn: Connection, sealer: Sealer, *, user_id: str, factor_id: str, code: str, now: datetime
) -> FactorRecord:
    row = _totp_row(conn, user_id, factor_id)
    if row.status == "active":
        raise Conflict("This factor is already active.", code="factor_active")
    secret = sealer.unseal(row.sealed_secret, context=_context(row.id)).decode()
    verified = verify_totp(secret=secret, code=code, now=now, last_used_step=row.replay_counter)
    conn.execute(
        update(factors)
        .where(factors.c.id == factor_id)
        .values(status="active", activated_at=now, last_used_at=now, replay_counter=verified.step)
    )
    return _record(_totp_row(conn, user_id, factor_id))


def verify_totp_login(
    conn: Connection,
    sealer: Sealer,
    *,
    user_id: str,
    code: str,
    now: datetime,
    excluding_session: str | None = None,
) -> FactorRecord:
    """Check ``code`` against every active TOTP factor (for a step-up, not those its own
    session added: ``excluding_session``); remember the step (no replay)."""
    rows = conn.execute(
        select(factors).where(
            factors.c.user_id == user_id, factors.c.type == "totp", factors.c.status == "active"
        )
    ).all()
    for row in rows:
        if excluding_session is not None and row.added_session_id == excluding_session:
            continue
        secret = sealer.unseal(row.sealed_secret, context=_context(row.id)).decode()
        try:
            verified = verify_totp(
                secret=secret, code=code, now=now, last_used_step=row.replay_counter
            )
        except InvalidCode:
            continue
        # Compare-and-set: a concurrent request that used the same step loses.
        changed = conn.execute(
            update(factors)
            .where(factors.c.id == row.id, factors.c.replay_counter == row.replay_counter)
            .values(replay_counter=verified.step, last_used_at=now)
        ).rowcount
        if changed == 1:
            return _record(row)
    raise InvalidCode("The code is not valid.")


def use_recovery_code(
    conn: Connection,
    *,
    user_id: str,
    code: str,
    now: datetime,
    excluding_session: str | None = None,
) -> int:
    """Consume one recovery code (single use, compare-and-set); returns how many remain.
    For a step-up, codes its own session made do not count (``excluding_session``)."""
    unused = unused_recovery_codes(conn, user_id, excluding_session=excluding_session)
    verified = verify_recovery_code(presented=code, unused_hashes=unused)
    changed = conn.execute(
        update(recovery_codes)
        .where(recovery_codes.c.id == verified.code_id, recovery_codes.c.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if changed != 1:
        raise InvalidCode("The code is not valid.")
    return len(unused_recovery_codes(conn, user_id))


def regenerate_recovery_codes(
    conn: Connection, *, user_id: str, now: datetime, session_id: str | None
) -> list[str]:
    """Ten new codes, shown once; every earlier code stops working. ``session_id``: the
    session that made them (they never satisfy its own step-up)."""
    conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
    codes = generate_recovery_codes(10)
    for code in codes:
        conn.execute(
            insert(recovery_codes).values(
                id=new_id("rc"),
                user_id=user_id,
                code_hash=hash_recovery_code(code),
                created_at=now,
                added_session_id=session_id,
            )
        )
    return codes


def remove_factor(conn: Connection, *, user_id: str, factor_id: str) -> FactorRecord:
    row = conn.execute(
        select(factors).where(factors.c.id == factor_id, factors.c.user_id == user_id)
    ).first()
    if row is None:
        raise NotFound("No such factor.", code="factor_not_found")
    conn.execute(delete(factors).where(factors.c.id == factor_id))
    return _record(row)
