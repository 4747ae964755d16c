"""``verify_factor``: one more factor on a pending login or step-up transaction.

RFC 6238 TOTP, a recovery code, or a WebAuthn assertion answering the challenge of
``start_key_challenge`` (``/challenge`` with ``method: webauthn``); a transaction dies
after ``max_attempts`` wrong codes or refused assertions.
Wrong codes are recorded (``login.failure`` or ``step_up.failure``) and committed before
the error is answered. Across transactions, every method is wrapped by the guessing
limits (``authn.guessing``: checked before the code is looked at, a failure counted by
the method's ``guessable`` property, a success clearing the account's counts), and each
failure is a failed sign-in to the risk engine (``authn.adaptive.record_factor_failure``).
A step-up never accepts a factor or a recovery code its own session added (issue 11.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bastion.audit import record
from bastion.authn.adaptive import record_factor_failure, risk_allowed, risk_policy
from bastion.authn.assurance import VerifiedFactor, compute_assurance, factor_record
from bastion.authn.enrollment import login_methods, use_recovery_code, verify_totp_login
from bastion.authn.guessing import check_guess, clear_guesses, count_failure
from bastion.authn.login import AuthnDeps, ClientContext, finish, mfa_required
from bastion.authn.results import LoginResult
from bastion.authn.security_keys import (
    audit_refusal,
    credentials_of,
    unavailable_methods,
    verify_key,
    webauthn_unavailable,
)
from bastion.authn.sessions import start_session
from bastion.authn.step_up import AAL3_METHODS
from bastion.authn.transactions import (
    InvalidTransaction,
    Transaction,
    add_verified,
    close,
    load_pending,
    record_failure,
)
from bastion.authn.webauthn_challenges import (
    issue_transaction_challenge,
    take_transaction_challenge,
)
from bastion.domain import acr_satisfies
from bastion.errors import AssertionRefused, BastionError, InvalidCode, ValidationError
from bastion.factors.webauthn import authentication_options
from bastion.identity.rules import load_policy
from bastion.identity.users import User, user_by_id
from bastion.risk import record_login_outcome
from bastion.storage import CommitThenRaise

SECOND_FACTOR_METHODS = ("totp", "recovery_code", "webauthn")


def _pending(
    deps: AuthnDeps, conn: Connection, transaction_id: str, now: datetime
) -> tuple[Transaction, User, str | None, list[str]]:
    """The pending transaction, its live user, the session a step-up may not use the
    factors of, and the methods available."""
    try:
        tx = load_pending(conn, transaction_id, now=now)
    except InvalidTransaction as exc:
        raise CommitThenRaise(exc) from None
    user = user_by_id(conn, tx.user_id)
    if not user.active:
        close(conn, tx.id, status="dead")
        raise CommitThenRaise(InvalidTransaction())
    # A step-up is never satisfied with what its own session added (issue 11.1).
    own = tx.session_id if tx.purpose == "step_up" else None
    # Only the methods the risk engine's requirement allowed (phishing-resistant ones),
    # and that this server can run (no WebAuthn without a relying party).
    enrolled = login_methods(conn, user.id, excluding_session=own)
    unusable = unavailable_methods(deps.relying_party, enrolled)
    usable = [method for method in enrolled if method not in unusable]
    return tx, user, own, risk_allowed(tx.context, usable)


def _not_available(method: str, available: list[str]) -> ValidationError:
    return ValidationError(
        f"Method '{method}' is not available for this login; use one of: " + ", ".join(available),
        code="method_not_available",
    )


def start_key_challenge(deps: AuthnDeps, *, transaction_id: str) -> dict[str, Any]:
    """``PublicKeyCredentialRequestOptionsJSON`` for the transaction's user's keys; the
    challenge is kept on the transaction (single use, 5 minutes at most). User
    verification is required when no other factor was proven yet (a passkey session's
    step-up), so that the key alone proves two categories."""
    rp = deps.relying_party
    if rp is None:
        raise webauthn_unavailable()
    with deps.db.begin() as conn:
        now = deps.clock.now()
        tx, user, own, available = _pending(deps, conn, transaction_id, now)
        if "webauthn" not in available:
            raise _not_available("webauthn", available)
        keys = credentials_of(conn, user.id, excluding_session=own)
        user_verification = not tx.verified
        pending = issue_transaction_challenge(
            conn,
            tx,
            allow=[key.stored.credential_id for key in keys],
            user_verification=user_verification,
            now=now,
        )
        return authentication_options(
            rp=rp,
            challenge=pending.challenge,
            allow=[key.stored.descriptor() for key in keys],
            user_verification="required" if user_verification else "preferred",
        )


def _verify_key(
    deps: AuthnDeps,
    conn: Connection,
    tx: Transaction,
    user: User,
    credential: Mapping[str, Any],
    *,
    own: str | None,
    now: datetime,
) -> dict[str, Any]:
    rp = deps.relying_party
    if rp is None:
        raise webauthn_unavailable()
    try:
        pending = take_transaction_challenge(conn, tx, now=now)
    except AssertionRefused as refused:
        audit_refusal(conn, refused, key=None, user_id=user.id, ceremony=tx.purpose, now=now)
        raise
    used = verify_key(
        conn,
        rp,
        credential=credential,
        pending=pending,
        user_id=user.id,
        ceremony=tx.purpose,
        now=now,
        excluding_session=own,
    )
    return factor_record(used.factor)


def verify_factor(
    deps: AuthnDeps,
    *,
    transaction_id: str,
    method: str,
    code: str | None,
    context: ClientContext,
    credential: Mapping[str, Any] | None = None,
    remember_device: bool = False,
    device_name: str | None = None,
) -> LoginResult:
    """Verify one more factor; tokens once the transaction's assurance is reached."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
        tx, user, own, available = _pending(deps, conn, transaction_id, now)
        if method not in SECOND_FACTOR_METHODS or method not in available:
            raise _not_available(method, available)
        if method == "webauthn" and credential is None:
            raise ValidationError("This method needs a 'credential'.", field="credential")
        if method != "webauthn" and not code:
            raise ValidationError("This method needs a 'code'.", field="code")
        check_guess(conn, deps.sealer, user_id=user.id, method=method, now=now)
        try:
            if method == "webauthn":
                assert credential is not None
                factor = _verify_key(deps, conn, tx, user, credential, own=own, now=now)
            elif method == "totp":
                assert code is not None
                verify_totp_login(
                    conn, deps.sealer, user_id=user.id, code=code, now=now, excluding_session=own
                )
                factor = {"method": method, "amr": ["otp"]}
            else:
                assert code is not None
                codes_left = use_recovery_code(
                    conn, user_id=user.id, code=code, now=now, excluding_session=own
                )
                record(
                    conn,
                    "recovery_code.used",
                    actor=user.id,
                    tenant_id=user.tenant_id,
                    details={"remaining": codes_left},
                    now=now,
                )
                factor = {"method": method, "amr": ["recovery_code"]}
        except (InvalidCode, AssertionRefused) as wrong:
            raise refused(
                deps, conn, tx, user, method, ip=context.ip, now=now, error=wrong
            ) from None
        clear_guesses(conn, deps.sealer, user_id=user.id, now=now)

        tx = add_verified(conn, tx, factor)
        assurance = compute_assurance([VerifiedFactor.from_record(f) for f in tx.verified])
        if not acr_satisfies(assurance.acr, tx.required_acr):
            further = [
                m
                for m in available
                if m != method and (tx.required_acr != "aal3" or m in AAL3_METHODS)
            ]
            # A step-up ends with what was proven when nothing offered can raise it and
            # that is still multi-factor (a synced passkey asked for aal3): fresh tokens
            # at that level, and the action that asked for more stays refused.
            if further or tx.purpose != "step_up" or not acr_satisfies(assurance.acr, "aal2"):
                return mfa_required(tx, further, now=now)
        close(conn, tx.id, status="completed")
        amr = list(assurance.amr)
        if tx.purpose != "step_up":
            return finish(
                deps, conn, user, acr=assurance.acr, amr=amr, context=context, reason=method,
                now=now, risk=tx.context.get("risk"), remember_device=remember_device,
                device_name=device_name,
            )  # fmt: skip
        tokens = start_session(
            conn,
            deps.sessions,
            user,
            acr=assurance.acr,
            amr=amr,
            auth_time=now,
            now=now,
            ip=context.ip,
            user_agent=context.user_agent,
        )
        saved = tx.context.get("risk")
        if saved is not None and "decision" in saved:  # the step-up's scored attempt
            record_login_outcome(
                conn, saved, outcome="success", tenant_id=user.tenant_id,
                policy=risk_policy(load_policy(conn, user.tenant_id)), now=now,
            )  # fmt: skip
        record(
            conn,
            "step_up.success",
            actor=user.id,
            tenant_id=user.tenant_id,
            details={
                "acr": assurance.acr,
                "amr": ",".join(amr),
                "session_id": tx.session_id,
                "required_acr": tx.required_acr,
            },
            now=now,
        )
        return tokens


def refused(
    deps: AuthnDeps,
    conn: Connection,
    tx: Transaction,
    user: User,
    method: str,
    *,
    ip: str | None,
    now: datetime,
    error: BastionError | None = None,
) -> CommitThenRaise:
    """A wrong code or a refused assertion of ``method``: counted across transactions when
    the method can be guessed (``authn.guessing``), counted on the transaction, recorded
    (the audit event, and a failed sign-in from ``ip`` to the risk engine); the error to
    raise once that has committed. A refused assertion keeps its reason
    (``wrong_origin``, ``counter_regression``…) in the answer and the event."""
    reason = getattr(error, "reason", None) if isinstance(error, AssertionRefused) else None
    counted = count_failure(conn, deps.sealer, user=user, method=method, now=now)
    record_factor_failure(conn, deps.risk, deps.sealer, user, ip=ip, now=now)
    dead = record_failure(conn, tx, max_attempts=deps.max_attempts)
    record(
        conn,
        "step_up.failure" if tx.purpose == "step_up" else "login.failure",
        outcome="failure",
        actor=user.id,
        tenant_id=user.tenant_id,
        reason=reason or "invalid_code",
        details={
            "method": method,
            "attempts": tx.failed_attempts + 1,
            "failures": counted.failures,
            "retry_after": counted.retry_after,
        },
        now=now,
    )
    message = "The code is not valid."
    if error is not None and reason is not None:
        message = f"The security key's answer was refused: {error.detail}"
    if dead:
        message += " Too many wrong codes: sign in again."
    elif counted.retry_after:
        message += f" Too many wrong codes: try again in {counted.retry_after} seconds."
    if reason is not None:
        return CommitThenRaise(InvalidCode(message, reason=reason))
    return CommitThenRaise(InvalidCode(message))
