"""A signed-in user's own authenticators and sessions (``/me``): the use cases.

Each runs in one write transaction with one ``now``: it reads the account's state
(``Resource.account``: whether it already has an active factor, and whether this
session set every one of them up), asks ``authz.decide`` (``identity.authorization``),
acts, and records its own event. A stolen password alone never adds the thief's
authenticator to an account that has one: ``decide`` asks for aal2 then, unless the
enrolment session that set the account up is finishing its set-up.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from bastion.audit import record
from bastion.authn.enrollment import (
    FactorRecord,
    TotpEnrollment,
    activate_totp,
    all_active_enrolled_in,
    enroll_totp,
    has_active_second_factor,
    regenerate_recovery_codes,
    remove_factor,
)
from bastion.authn.login import AuthnDeps
from bastion.authn.sessions import end_session, session_by_id
from bastion.authz import Account, Resource
from bastion.domain import Principal
from bastion.errors import NotFound
from bastion.identity.authorization import check


def account_of(conn: Connection, principal: Principal) -> Account:
    """The attributes ``decide`` reads about the caller's own account."""
    has_factor = has_active_second_factor(conn, principal.id)
    set_up_here = (
        has_factor
        and principal.session_id is not None
        and all_active_enrolled_in(conn, principal.id, principal.session_id)
    )
    return Account(has_active_factor=has_factor, set_up_by_this_session=set_up_here)


def _may_add_factor(conn: Connection, principal: Principal, now: datetime) -> None:
    resource = Resource(principal.tenant_id, account=account_of(conn, principal))
    check(conn, principal, "me.factors.enroll", resource, subject=f"user:{principal.id}", now=now)


def start_totp(deps: AuthnDeps, principal: Principal, *, name: str) -> TotpEnrollment:
    """A pending TOTP factor and its secret (shown once)."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
        _may_add_factor(conn, principal, now)
        enrollment = enroll_totp(
            conn,
            deps.sealer,
            user_id=principal.id,
            account_name=principal.name,
            name=name,
            now=now,
            session_id=principal.session_id,
        )
        record(
            conn,
            "factor.enrolled",
            actor=principal.id,
            tenant_id=principal.tenant_id,
            resource=f"user:{principal.id}",
            details={"factor_type": "totp", "factor_id": enrollment.factor_id, "name": name},
            now=now,
        )
        return enrollment


def finish_totp(
    deps: AuthnDeps, principal: Principal, *, factor_id: str, code: str
) -> FactorRecord:
    """Activate a pending TOTP factor with a valid code (RFC 6238)."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
        _may_add_factor(conn, principal, now)
        factor = activate_totp(
            conn, deps.sealer, user_id=principal.id, factor_id=factor_id, code=code, now=now
        )
        record(
            conn,
            "factor.activated",
            actor=principal.id,
            tenant_id=principal.tenant_id,
            resource=f"user:{principal.id}",
            details={"factor_type": "totp", "factor_id": factor.id},
            now=now,
        )
        return factor


def new_recovery_codes(deps: AuthnDeps, principal: Principal) -> list[str]:
    """Ten new recovery codes (shown once); the old ones stop working."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
        _may_add_factor(conn, principal, now)
        codes = regenerate_recovery_codes(conn, user_id=principal.id, now=now)
        record(
            conn,
            "recovery_codes.regenerated",
            actor=principal.id,
            tenant_id=principal.tenant_id,
            resource=f"user:{principal.id}",
            details={"count": len(codes)},
            now=now,
        )
        return codes


def drop_factor(deps: AuthnDeps, principal: Principal, factor_id: str) -> FactorRecord:
    """Remove one of the caller's factors (the door asked for step-up already)."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
        factor = remove_factor(conn, user_id=principal.id, factor_id=factor_id)
        record(
            conn,
            "factor.removed",
            actor=principal.id,
            tenant_id=principal.tenant_id,
            resource=f"user:{principal.id}",
            details={"factor_type": factor.type, "factor_id": factor.id},
            now=now,
        )
        return factor


def end_own_session(deps: AuthnDeps, principal: Principal, session_id: str) -> None:
    """End one of the caller's sessions (``404`` for anyone else's)."""
    with deps.db.begin() as conn:
        session = session_by_id(conn, session_id)
        if session is None or session.user_id != principal.id:
            raise NotFound("No such session.", code="session_not_found")
        end_session(
            conn,
            session_id,
            reason="user_ended",
            action="session.revoked",
            actor=principal.id,
            now=deps.clock.now(),
        )
