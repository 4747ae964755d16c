"""A signed-in user's own authenticators and sessions (``/me``): the use cases.

Each runs in one write transaction with one ``now``: it reads the account's state
(``Resource.account``: whether it already has an active factor, and whether this
session set every one of them up), asks ``authz.decide`` (``identity.authorization``),
acts, and records its own event. Every change of how the account signs in (a factor
enrolled, activated or removed, new recovery codes; the password: ``authn.password``) is
a ``changes_sign_in`` permission: a recent proof with a factor the account already had,
so a stale or stolen token never adds the thief's authenticator (issue 11.1); the
enrolment session setting up the first factor is the exception. Each change records
where it came from (session, address, user agent) and is notified once committed
(``authn.notices``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from bastion.audit import record
from bastion.audit.events import Outcome
from bastion.authn.console_sessions import delete_user_console_sessions
from bastion.authn.enrollment import (
    FactorRecord,
    Origin,
    TotpEnrollment,
    activate_totp,
    all_active_enrolled_in,
    enroll_totp,
    has_active_second_factor,
    regenerate_recovery_codes,
    remove_factor,
)
from bastion.authn.guessing import activation_subject, check_guess, count_failure
from bastion.authn.login import AuthnDeps, ClientContext
from bastion.authn.notices import AccountNotice, deliver
from bastion.authn.security_keys import aal3_capable
from bastion.authn.sessions import end_session, revoke_other_sessions, session_by_id
from bastion.authz import Account, Resource
from bastion.domain import Principal
from bastion.errors import Conflict, InvalidCode, NotFound
from bastion.identity.authorization import check
from bastion.identity.credentials import revoke_devices
from bastion.identity.rules import load_policy
from bastion.identity.users import user_by_id
from bastion.storage import CommitThenRaise
from bastion.text import check_name


def account_of(conn: Connection, principal: Principal) -> Account:
    """The attributes ``decide`` reads about the caller's own account."""
    has_factor = has_active_second_factor(conn, principal.id)
    set_up_here = (
        has_factor
        and principal.session_id is not None
        and all_active_enrolled_in(conn, principal.id, principal.session_id)
    )
    return Account(has_active_factor=has_factor, set_up_by_this_session=set_up_here)


def may_change_sign_in(
    conn: Connection, principal: Principal, action: str, *, now: datetime
) -> None:
    """``decide`` on a ``changes_sign_in`` action, with the account as it is now."""
    resource = Resource(principal.tenant_id, account=account_of(conn, principal))
    check(conn, principal, action, resource, subject=f"user:{principal.id}", now=now)


def origin(principal: Principal, context: ClientContext) -> Origin:
    return Origin(principal.session_id, context.ip, context.user_agent)


def notice(
    principal: Principal,
    event: str,
    context: ClientContext,
    *,
    now: datetime,
    **details: str,
) -> AccountNotice:
    return AccountNotice(
        event=event,
        user_id=principal.id,
        tenant_id=principal.tenant_id,
        at=now,
        session_id=principal.session_id,
        ip=context.ip,
        user_agent=context.user_agent,
        details=details,
    )


def record_change(
    conn: Connection,
    principal: Principal,
    action: str,
    context: ClientContext,
    *,
    now: datetime,
    outcome: Outcome = "success",
    reason: str | None = None,
    **details: object,
) -> None:
    """An event of the caller's own account, with where the change came from."""
    record(
        conn,
        action,
        outcome=outcome,
        actor=principal.id,
        tenant_id=principal.tenant_id,
        resource=f"user:{principal.id}",
        reason=reason,
        details={
            **details,
            "session_id": principal.session_id,
            "ip": context.ip,
            "user_agent": context.user_agent,
        },
        now=now,
    )


def start_totp(
    deps: AuthnDeps, principal: Principal, *, name: str, context: ClientContext
) -> TotpEnrollment:
    """A pending TOTP factor and its secret (shown once)."""
    check_name(name, field="name")
    with deps.db.begin() as conn:
        now = deps.clock.now()
        may_change_sign_in(conn, principal, "me.factors.enroll", now=now)
        enrollment = enroll_totp(
            conn,
            deps.sealer,
            user_id=principal.id,
            account_name=principal.name,
            name=name,
            now=now,
            origin=origin(principal, context),
        )
        record_change(
            conn,
            principal,
            "factor.enrolled",
            context,
            now=now,
            factor_type="totp",
            factor_id=enrollment.factor_id,
            name=name,
        )
    deliver(deps.notify, notice(principal, "factor.enrolled", context, now=now, factor_type="totp"))
    return enrollment


def finish_totp(
    deps: AuthnDeps, principal: Principal, *, factor_id: str, code: str, context: ClientContext
) -> FactorRecord:
    """Activate a pending TOTP factor with a valid code (RFC 6238); wrong codes are counted
    on that factor (``authn.guessing``) and recorded."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
        may_change_sign_in(conn, principal, "me.factors.enroll", now=now)
        subject = activation_subject(factor_id)
        check_guess(
            conn, deps.sealer, user_id=principal.id, method="totp", subject=subject, now=now
        )
        try:
            factor = activate_totp(
                conn, deps.sealer, user_id=principal.id, factor_id=factor_id, code=code, now=now
            )
        except InvalidCode as wrong:
            user = user_by_id(conn, principal.id)
            counted = count_failure(
                conn, deps.sealer, user=user, method="totp", subject=subject, now=now
            )
            record_change(
                conn,
                principal,
                "factor.activated",
                context,
                now=now,
                outcome="failure",
                reason="invalid_code",
                factor_type="totp",
                factor_id=factor_id,
                failures=counted.failures,
                retry_after=counted.retry_after,
            )
            raise CommitThenRaise(wrong) from None
        record_change(
            conn,
            principal,
            "factor.activated",
            context,
            now=now,
            factor_type="totp",
            factor_id=factor.id,
        )
    deliver(
        deps.notify,
        notice(
            principal, "factor.activated", context, now=now, factor_type="totp", name=factor.name
        ),
    )
    return factor


def new_recovery_codes(
    deps: AuthnDeps, principal: Principal, *, context: ClientContext
) -> list[str]:
    """Ten new recovery codes (shown once); the old ones stop working."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
        may_change_sign_in(conn, principal, "me.factors.enroll", now=now)
        codes = regenerate_recovery_codes(
            conn, user_id=principal.id, now=now, session_id=principal.session_id
        )
        record_change(
            conn, principal, "recovery_codes.regenerated", context, now=now, count=len(codes)
        )
    deliver(deps.notify, notice(principal, "recovery_codes.regenerated", context, now=now))
    return codes


def drop_factor(
    deps: AuthnDeps, principal: Principal, factor_id: str, *, context: ClientContext
) -> FactorRecord:
    """Remove one of the caller's factors (a recent two-factor proof). The last factor
    that reaches aal3 stays while the policy requires aal3 of this user (an admin under
    ``admin_requires_aal3``): ``409 last_aal3_factor``."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
        may_change_sign_in(conn, principal, "me.factors.remove", now=now)
        if (
            "admin" in principal.roles
            and load_policy(conn, principal.tenant_id).admin_requires_aal3
            and aal3_capable(conn, principal.id)
            and not aal3_capable(conn, principal.id, excluding_factor=factor_id)
        ):
            raise Conflict(
                "This is your last security key that reaches aal3, and the policy requires "
                "aal3 for administration: register another device-bound key first.",
                code="last_aal3_factor",
            )
        factor = remove_factor(conn, user_id=principal.id, factor_id=factor_id)
        record_change(
            conn,
            principal,
            "factor.removed",
            context,
            now=now,
            factor_type=factor.type,
            factor_id=factor.id,
        )
    deliver(
        deps.notify,
        notice(
            principal, "factor.removed", context, now=now, factor_type=factor.type, name=factor.name
        ),
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


@dataclass(frozen=True)
class SignedOutEverywhere:
    sessions_revoked: int  # API sessions, this one included
    console_sessions: int  # web console sessions
    devices_revoked: int  # remembered devices


def sign_out_everywhere(
    deps: AuthnDeps, principal: Principal, *, context: ClientContext
) -> SignedOutEverywhere:
    """Every session of the caller ends, this one included, with every console session
    and every remembered device (a device is a possession factor that a sign-in earned:
    it must not survive the person's "sign me out of everything")."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
        ended = revoke_other_sessions(
            conn, principal.id, keep=None, reason="signed_out_everywhere", now=now
        )
        consoles = delete_user_console_sessions(conn, principal.id)
        devices = revoke_devices(
            conn, actor_id=principal.id, user_id=principal.id, tenant_id=principal.tenant_id,
            reason="signed_out_everywhere", now=now,
        )  # fmt: skip
        record_change(
            conn,
            principal,
            "session.revoked",
            context,
            now=now,
            reason="signed_out_everywhere",
            user_id=principal.id,
            count=ended,
            console_sessions=consoles,
        )
    return SignedOutEverywhere(ended, consoles, devices)
