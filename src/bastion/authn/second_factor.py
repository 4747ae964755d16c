"""``verify_factor``: one more factor on a pending login or step-up transaction.

RFC 6238 TOTP or a recovery code; a transaction dies after ``max_attempts`` wrong codes.
Wrong codes are recorded (``login.failure`` or ``step_up.failure``) and committed before
the error is answered. Across transactions, every method is wrapped by the guessing
limits (``authn.guessing``: checked before the code is looked at, a failure counted by
the method's ``guessable`` property, a success clearing the account's counts). A
step-up never accepts a factor or a recovery code its own session added (issue 11.1).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from bastion.audit import record
from bastion.authn.assurance import VerifiedFactor, compute_assurance
from bastion.authn.enrollment import login_methods, use_recovery_code, verify_totp_login
from bastion.authn.guessing import check_guess, clear_guesses, count_failure
from bastion.authn.login import AuthnDeps, ClientContext, finish, mfa_required
from bastion.authn.results import LoginResult
from bastion.authn.sessions import start_session
from bastion.authn.transactions import (
    InvalidTransaction,
    Transaction,
    add_verified,
    close,
    load_pending,
    record_failure,
)
from bastion.domain import acr_satisfies
from bastion.errors import InvalidCode, ValidationError
from bastion.factors.catalog import Method
from bastion.identity.users import User, user_by_id
from bastion.storage import CommitThenRaise

SECOND_FACTOR_METHODS = ("totp", "recovery_code")


def verify_factor(
    deps: AuthnDeps,
    *,
    transaction_id: str,
    method: str,
    code: str | None,
    context: ClientContext,
) -> LoginResult:
    """Verify one more factor; tokens once the transaction's assurance is reached."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
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
        available = login_methods(conn, user.id, excluding_session=own)
        if method not in SECOND_FACTOR_METHODS or method not in available:
            raise ValidationError(
                f"Method '{method}' is not available for this login; use one of: "
                + ", ".join(available),
                code="method_not_available",
            )
        if not code:
            raise ValidationError("This method needs a 'code'.", field="code")
        check_guess(conn, deps.sealer, user_id=user.id, method=method, now=now)
        try:
            if method == "totp":
                verify_totp_login(
                    conn, deps.sealer, user_id=user.id, code=code, now=now, excluding_session=own
                )
            else:
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
        except InvalidCode:
            raise refused(deps, conn, tx, user, method, now=now) from None
        clear_guesses(conn, deps.sealer, user_id=user.id, now=now)

        tx = add_verified(conn, tx, {"method": method, "amr": ["otp"]})
        assurance = compute_assurance(
            [VerifiedFactor(method=Method(f["method"]), amr=tuple(f["amr"])) for f in tx.verified]
        )
        if not acr_satisfies(assurance.acr, tx.required_acr):
            return mfa_required(tx, [m for m in available if m != method], now=now)
        close(conn, tx.id, status="completed")
        amr = list(assurance.amr)
        if tx.purpose != "step_up":
            return finish(
                deps, conn, user, acr=assurance.acr, amr=amr, context=context, reason=method,
                now=now,
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
        record(
            conn,
            "step_up.success",
            actor=user.id,
            tenant_id=user.tenant_id,
            details={"acr": assurance.acr, "amr": ",".join(amr), "session_id": tx.session_id},
            now=now,
        )
        return tokens


def refused(
    deps: AuthnDeps, conn: Connection, tx: Transaction, user: User, method: str, *, now: datetime
) -> CommitThenRaise:
    """A wrong code or a refused assertion of ``method``: counted across transactions when
    the method can be guessed (``authn.guessing``), counted on the transaction, recorded;
    the error to raise once that has committed."""
    counted = count_failure(conn, deps.sealer, user=user, method=method, now=now)
    dead = record_failure(conn, tx, max_attempts=deps.max_attempts)
    record(
        conn,
        "step_up.failure" if tx.purpose == "step_up" else "login.failure",
        outcome="failure",
        actor=user.id,
        tenant_id=user.tenant_id,
        reason="invalid_code",
        details={
            "method": method,
            "attempts": tx.failed_attempts + 1,
            "failures": counted.failures,
            "retry_after": counted.retry_after,
        },
        now=now,
    )
    message = "The code is not valid."
    if dead:
        message += " Too many wrong codes: sign in again."
    elif counted.retry_after:
        message += f" Too many wrong codes: try again in {counted.retry_after} seconds."
    return CommitThenRaise(InvalidCode(message))
