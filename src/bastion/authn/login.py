"""The login state machine: password, then second factors, then tokens.

    password_login ─▶ enrollment_required (no second factor yet: restricted token)
                   ─▶ mfa_required (transaction) ─▶ verify_factor ─▶ tokens | more factors
    start_step_up  ─▶ mfa_required (transaction, purpose step_up) ─▶ verify_factor ─▶ tokens

Failures commit their bookkeeping (audit, attempt and throttle counts) before they are raised,
and every failure of the password step looks the same to the client.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bastion.audit import AuditEvent, emit
from bastion.authn.assurance import VerifiedFactor, acr_satisfies, compute_assurance
from bastion.authn.enrollment import login_methods, use_recovery_code, verify_totp_login
from bastion.authn.principal import Principal
from bastion.authn.sessions import RESTRICTED_ENROLLMENT, start_session
from bastion.authn.throttle import FailureThrottle
from bastion.authn.transactions import (
    InvalidTransaction,
    Transaction,
    add_verified,
    close,
    load_pending,
    open_transaction,
    record_failure,
)
from bastion.errors import AuthorizationError, InvalidCode, InvalidCredentials, ValidationError
from bastion.factors.catalog import Method
from bastion.factors.password import burn_dummy_verify, hash_password, verify_password
from bastion.identity.policies import load_policy
from bastion.identity.users import (
    User,
    find_user,
    find_user_by_id,
    set_password_hash,
    user_by_id,
)
from bastion.runtime import Runtime
from bastion.storage import CommitThenRaise

MAX_USERNAME = 256
MAX_PASSWORD = 1024
SECOND_FACTOR_METHODS = ("totp", "recovery_code")
STEP_UP_LEVELS = ("aal2", "aal3")

_PASSWORD_FACTOR = {"method": "password", "amr": ["pwd"]}


@dataclass(frozen=True)
class ClientContext:
    ip: str | None
    user_agent: str | None
    device_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "ip": self.ip,
            "user_agent": (self.user_agent or "")[:256] or None,
            "device_id": self.device_id,
        }


class LoginThrottles:
    """Failed logins per account (10 / 15 min) and per client address (100 / 15 min).

    Only the limits: the counts live in the database (``authn.throttle``), shared by
    every worker process.
    """

    def __init__(self) -> None:
        self.by_account = FailureThrottle(scope="account", limit=10, window=900)
        self.by_address = FailureThrottle(scope="address", limit=100, window=900)


def _login_failed(
    conn: Connection,
    rt: Runtime,
    user: User | None,
    *,
    reason: str,
    context: ClientContext,
) -> CommitThenRaise:
    emit(
        conn,
        AuditEvent(
            action="login.failure",
            outcome="failure",
            actor=user.id if user else None,
            tenant_id=user.tenant_id if user else None,
            reason=reason,
            # An unknown username is not recorded: people type their password there.
            details={"ip": context.ip, "username": user.username if user else None},
        ),
        now=rt.clock.now(),
    )
    return CommitThenRaise(InvalidCredentials())


def password_login(
    rt: Runtime,
    throttles: LoginThrottles,
    *,
    username: str,
    password: str,
    context: ClientContext,
) -> dict[str, Any]:
    """First step. Unknown user, wrong password and suspended user fail identically.

    The password is checked outside any transaction: argon2 takes tens of milliseconds,
    and a write transaction holds SQLite's one write lock, which every other writer of
    every worker process (upserts, audit, other sign-ins) would wait for meanwhile. The
    throttles are checked before the check, and again in the write transaction that
    records its outcome: attempts that ran at the same moment are counted there one after
    another, so no more than ``limit`` attempts of one key are ever answered (an attempt
    that finds the limit reached answers 429 whatever its password was).
    """
    by_account, by_address = throttles.by_account, throttles.by_address
    account_key = by_account.key(rt.sealer, username.strip().casefold()[:MAX_USERNAME])
    address_key = by_address.key(rt.sealer, context.ip or "-")
    with rt.db.read() as conn:
        _check_throttles(throttles, conn, address_key, account_key, now=rt.clock.now())
        user = find_user(conn, username) if len(username) <= MAX_USERNAME else None
    failure, new_hash = _check_password(rt, user, password)
    with rt.db.begin() as conn:
        now = rt.clock.now()
        _check_throttles(throttles, conn, address_key, account_key, now=now)
        if user is not None and failure is None:  # the account may have changed meanwhile
            user, failure = _still_valid(conn, user)
        if failure is not None:
            by_address.fail(conn, address_key, now=now)
            by_account.fail(conn, account_key, now=now)
            raise _login_failed(conn, rt, user, reason=failure, context=context)
        assert user is not None
        if new_hash is not None:
            set_password_hash(conn, user.id, new_hash, now=now)
        by_account.clear(conn, account_key)
        return _signed_in_with_password(rt, conn, user, context=context, now=now)


def _check_throttles(
    throttles: LoginThrottles,
    conn: Connection,
    address_key: str,
    account_key: str,
    *,
    now: datetime,
) -> None:
    throttles.by_address.check(conn, address_key, now=now)
    throttles.by_account.check(conn, account_key, now=now)


def _check_password(rt: Runtime, user: User | None, password: str) -> tuple[str | None, str | None]:
    """(why it failed or None, a fresh hash to store or None), after one argon2 verify
    whatever the case (an unknown user costs what a wrong password costs)."""
    if user is None or not user.active or user.password_hash is None:
        burn_dummy_verify(password[:MAX_PASSWORD], hasher=rt.hasher)
        if user is None:
            return "unknown_user", None
        return ("no_password" if user.password_hash is None else f"user_{user.status}"), None
    try:
        checked = verify_password(
            stored_hash=user.password_hash, presented=password, hasher=rt.hasher
        )
    except InvalidCredentials:
        return "bad_password", None
    if checked.needs_rehash:
        return None, hash_password(password, hasher=rt.hasher)
    return None, None


def _still_valid(conn: Connection, checked: User) -> tuple[User | None, str | None]:
    """The account as it is now, and why the sign-in fails if it changed since its
    password was checked (suspended, deleted, or a new password set)."""
    current = find_user_by_id(conn, checked.id)
    if current is None:
        return None, "unknown_user"
    if not current.active:
        return current, f"user_{current.status}"
    if current.password_hash is None or checked.password_hash is None:
        return current, "no_password"
    if not hmac.compare_digest(current.password_hash.encode(), checked.password_hash.encode()):
        return current, "password_changed"
    return current, None


def _signed_in_with_password(
    rt: Runtime, conn: Connection, user: User, *, context: ClientContext, now: datetime
) -> dict[str, Any]:
    """After a right password: tokens, an enrolment-only session, or the second step."""
    if not load_policy(conn, user.tenant_id).mfa_required:
        return _finish(rt, conn, user, acr="aal1", amr=["pwd"], context=context, reason="password")
    methods = login_methods(conn, user.id)
    if not methods:
        response = start_session(
            rt,
            conn,
            user,
            acr="aal1",
            amr=["pwd"],
            auth_time=now,
            restricted=RESTRICTED_ENROLLMENT,
            ip=context.ip,
            user_agent=context.user_agent,
        )
        emit(
            conn,
            AuditEvent(
                action="login.enrollment_required",
                outcome="challenge",
                actor=user.id,
                tenant_id=user.tenant_id,
                details={"username": user.username},
            ),
            now=now,
        )
        return response
    tx = open_transaction(
        conn,
        user_id=user.id,
        purpose="login",
        required_acr="aal2",
        verified=[_PASSWORD_FACTOR],
        context=context.as_dict(),
        now=now,
        ttl=rt.settings.login_transaction_ttl,
    )
    return _mfa_required(rt, tx, methods)


def _mfa_required(rt: Runtime, tx: Transaction, methods: list[str]) -> dict[str, Any]:
    return {
        "status": "mfa_required",
        "transaction_id": tx.id,
        "expires_in": max(0, int((tx.expires_at - rt.clock.now()).total_seconds())),
        "methods": methods,
        "risk": {"level": "low"},
    }


def _audit_success(
    rt: Runtime,
    conn: Connection,
    user: User,
    *,
    action: str,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    emit(
        conn,
        AuditEvent(
            action=action,
            outcome="success",
            actor=user.id,
            tenant_id=user.tenant_id,
            reason=reason,
            details=dict(details or {}),
        ),
        now=rt.clock.now(),
    )


def _finish(
    rt: Runtime,
    conn: Connection,
    user: User,
    *,
    acr: str,
    amr: list[str],
    context: ClientContext,
    reason: str,
) -> dict[str, Any]:
    response = start_session(
        rt,
        conn,
        user,
        acr=acr,
        amr=amr,
        auth_time=rt.clock.now(),
        ip=context.ip,
        user_agent=context.user_agent,
    )
    _audit_success(
        rt,
        conn,
        user,
        action="login.success",
        reason=reason,
        details={"username": user.username, "acr": acr, "amr": ",".join(amr)},
    )
    return response


def verify_factor(
    rt: Runtime,
    conn: Connection,
    *,
    transaction_id: str,
    method: str,
    code: str | None,
    context: ClientContext,
) -> dict[str, Any]:
    """Verify one more factor of a pending transaction (RFC 6238 TOTP or a recovery code)."""
    now = rt.clock.now()
    try:
        tx = load_pending(conn, transaction_id, now=now)
    except InvalidTransaction as exc:
        raise CommitThenRaise(exc) from None
    user = user_by_id(conn, tx.user_id)
    if not user.active:
        close(conn, tx.id, status="dead")
        raise CommitThenRaise(InvalidTransaction())
    available = login_methods(conn, user.id)
    if method not in SECOND_FACTOR_METHODS or method not in available:
        raise ValidationError(
            f"Method '{method}' is not available for this login; use one of: "
            + ", ".join(available),
            code="method_not_available",
        )
    if not code:
        raise ValidationError("This method needs a 'code'.", field="code")
    try:
        if method == "totp":
            verify_totp_login(conn, rt.sealer, user_id=user.id, code=code, now=now)
        else:
            codes_left = use_recovery_code(conn, user_id=user.id, code=code, now=now)
            _audit_success(
                rt, conn, user, action="recovery_code.used", details={"remaining": codes_left}
            )
    except InvalidCode:
        dead = record_failure(conn, tx, max_attempts=rt.settings.login_max_attempts)
        emit(
            conn,
            AuditEvent(
                action="login.failure",
                outcome="failure",
                actor=user.id,
                tenant_id=user.tenant_id,
                reason="invalid_code",
                details={"method": method, "attempts": tx.failed_attempts + 1},
            ),
            now=now,
        )
        message = "The code is not valid."
        if dead:
            message += " Too many wrong codes: sign in again."
        raise CommitThenRaise(InvalidCode(message)) from None

    tx = add_verified(conn, tx, {"method": method, "amr": ["otp"]})
    assurance = compute_assurance(
        [VerifiedFactor(method=Method(f["method"]), amr=tuple(f["amr"])) for f in tx.verified]
    )
    if not acr_satisfies(assurance.acr, tx.required_acr):
        remaining = [m for m in available if m != method]
        return _mfa_required(rt, tx, remaining)
    close(conn, tx.id, status="completed")
    amr = list(assurance.amr)
    if tx.purpose == "step_up":
        response = start_session(
            rt,
            conn,
            user,
            acr=assurance.acr,
            amr=amr,
            auth_time=now,
            ip=context.ip,
            user_agent=context.user_agent,
        )
        _audit_success(
            rt,
            conn,
            user,
            action="step_up.success",
            details={"acr": assurance.acr, "amr": ",".join(amr), "session_id": tx.session_id},
        )
        return response
    return _finish(rt, conn, user, acr=assurance.acr, amr=amr, context=context, reason=method)


def start_step_up(
    rt: Runtime,
    conn: Connection,
    principal: Principal,
    *,
    acr_values: str | None,
    context: ClientContext,
) -> dict[str, Any]:
    """Open a step-up transaction for a signed-in user (RFC 9470 flow, API.md)."""
    if principal.kind != "user" or principal.restricted:
        raise AuthorizationError(
            "Only a signed-in user with an active factor can step up.", code="step_up_unavailable"
        )
    required = acr_values or "aal2"
    if required not in STEP_UP_LEVELS:
        raise ValidationError("acr_values must be 'aal2' or 'aal3'.", field="acr_values")
    methods = login_methods(conn, principal.id)
    if required == "aal3":
        methods = [m for m in methods if m == "webauthn"]
    if not methods:
        raise AuthorizationError(
            f"No authenticator that can reach {required} is enrolled; enrol one under /me/factors.",
            code="no_suitable_factor",
        )
    prior = [dict(_PASSWORD_FACTOR, prior=True)] if "pwd" in principal.amr else []
    now = rt.clock.now()
    tx = open_transaction(
        conn,
        user_id=principal.id,
        purpose="step_up",
        required_acr=required,
        verified=prior,
        context=context.as_dict(),
        now=now,
        ttl=rt.settings.login_transaction_ttl,
        session_id=principal.session_id,
    )
    response = _mfa_required(rt, tx, methods)
    response.pop("risk")
    return response
