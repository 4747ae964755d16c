"""The login state machine: password, then second factors, then tokens.

    password_login ─▶ enrollment_required (no second factor yet: restricted token)
                   ─▶ mfa_required (transaction) ─▶ verify_factor ─▶ tokens | more factors
    start_step_up  ─▶ mfa_required (transaction, purpose step_up) ─▶ verify_factor ─▶ tokens

``verify_factor`` is in ``authn.second_factor``, ``start_step_up`` in ``authn.step_up``.
Each ceremony takes ``AuthnDeps`` (what it uses, not the whole runtime), reads the clock
once per transaction and returns a typed result (``authn.results``) that ``api`` renders.
Failures commit their bookkeeping (audit, attempt and throttle counts) before they are
raised, and every failure of the password step looks the same to the client.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Connection

from bastion.audit import record
from bastion.authn.adaptive import (
    Assessed,
    LoginPlan,
    assess,
    login_plan,
    risk_details,
    risk_policy,
)
from bastion.authn.assurance import VerifiedFactor, acr_rank, compute_assurance
from bastion.authn.devices import remember
from bastion.authn.enrollment import login_methods
from bastion.authn.notices import Notifier, log_notice
from bastion.authn.results import LoginResult, MfaRequired
from bastion.authn.security_keys import unavailable_methods
from bastion.authn.sessions import RESTRICTED_ENROLLMENT, IssuedTokens, SessionIssuer, start_session
from bastion.authn.throttle import FailureThrottle
from bastion.authn.transactions import Transaction, open_transaction
from bastion.clock import Clock
from bastion.errors import InvalidCredentials, RateLimited
from bastion.factors.catalog import Method
from bastion.factors.password import burn_dummy_verify, hash_password, verify_password
from bastion.factors.webauthn import AttestationPolicy, RelyingParty
from bastion.identity.rules import load_policy
from bastion.identity.users import User, find_user, find_user_by_id, set_password_hash
from bastion.risk import RiskEngine, record_login_attempt, record_login_outcome
from bastion.risk.geo import BundledGeolocator
from bastion.risk.store import record_login
from bastion.sealing import Sealer
from bastion.storage import CommitThenRaise, Database

MAX_USERNAME = 256
MAX_PASSWORD = 1024
PASSWORD_FACTOR = {"method": "password", "amr": ["pwd"]}
REMEMBERED_DEVICE_FACTOR = VerifiedFactor(method=Method.REMEMBERED_DEVICE)


@dataclass(frozen=True)
class ClientContext:
    ip: str | None
    user_agent: str | None
    device_id: str | None = None  # a presented remembered-device credential (a secret)

    def as_dict(self) -> dict[str, str | None]:
        """What a transaction keeps: never the device credential (only its decision)."""
        return {"ip": self.ip, "user_agent": (self.user_agent or "")[:256] or None}


THIRTY_DAYS = 30 * 86_400


class LoginThrottles:
    """Failed sign-ins per client address (100 / 15 min) and per account (issue 11.9).

    An account's failures are counted apart for addresses its user has signed in from
    (``account_familiar``, ``authn.familiar``) and for every other address (``account``),
    so strangers cannot keep the owner out of a familiar place. Each count throttles by
    delay, not by a lock: 10 free failures, then 30 s after the last one, doubling with
    each failure up to an hour; 50 failures in 30 days stop that count until the oldest
    leaves, a right password from that kind of address, or an admin's unlock (at most
    100 guesses a month per account, NIST SP 800-63B-4 §3.2.2).

    Only the limits: the counts live in the database (``authn.throttle``), shared by
    every worker process.
    """

    def __init__(self) -> None:
        self.by_address = FailureThrottle(scope="address", limit=100, window=900)
        self.by_account = _account_count("account")
        self.by_familiar_account = _account_count("account_familiar")

    def account(self, *, familiar: bool) -> FailureThrottle:
        """The account count of an attempt from a familiar address, or from any other."""
        return self.by_familiar_account if familiar else self.by_account

    def account_keys(self, sealer: Sealer, username: str) -> list[tuple[FailureThrottle, str]]:
        """Both account counts of ``username`` and their keys (an admin's unlock)."""
        typed = account_text(username)
        return [(t, t.key(sealer, typed)) for t in (self.by_account, self.by_familiar_account)]


def _account_count(scope: str) -> FailureThrottle:
    return FailureThrottle(
        scope=scope, limit=50, window=THIRTY_DAYS, free=10, first_delay=30, max_delay=3600
    )


def account_text(username: str) -> str:
    """What an account count is keyed by: the typed username, as a login compares it."""
    return username.strip().casefold()[:MAX_USERNAME]


@dataclass(frozen=True)
class AuthnDeps:
    """What the authentication services use (sign-in, step-up, self-service): the
    database, the clock, the password hasher, the sealer (TOTP seeds, throttle keys),
    the session issuer and the login settings. Not the whole runtime."""

    db: Database
    clock: Clock
    hasher: PasswordHasher
    sealer: Sealer
    sessions: SessionIssuer
    transaction_ttl: int
    max_attempts: int
    throttles: LoginThrottles = field(default_factory=LoginThrottles)
    # Tells a user about changes to how their account signs in (``authn.notices``).
    notify: Notifier = log_notice
    # WebAuthn: who Bastion is to authenticators (None: no RP ID can be derived from the
    # public URL, an IP address, so security keys are unavailable) and which may register.
    relying_party: RelyingParty | None = None
    attestation: AttestationPolicy = field(default_factory=AttestationPolicy)
    # Scores every sign-in (``bastion.risk``; the runtime opens it from the settings).
    risk: RiskEngine = field(default_factory=lambda: RiskEngine(BundledGeolocator()))


def password_login(
    deps: AuthnDeps, *, username: str, password: str, context: ClientContext
) -> LoginResult:
    """First step. Unknown user, wrong password, suspended user and a sign-in the risk
    engine denies fail identically (the same body, the same argon2 verify).

    The risk engine scores the attempt first, with the throttles' read (``authn.adaptive``):
    an address trying many usernames is refused (``429``) before argon2 runs. The password
    is checked outside any transaction: argon2 takes tens of milliseconds, and a write
    transaction holds SQLite's one write lock, which every other writer of every worker
    process (upserts, audit, other sign-ins) would wait for meanwhile. The throttles are
    checked before the check, and again in the write transaction that records its
    outcome: attempts that ran at the same moment are counted there one after another,
    so no more than ``limit`` attempts of one key are ever answered (an attempt that finds
    the limit reached answers 429 whatever its password was).
    """
    throttles = deps.throttles
    address_key = throttles.by_address.key(deps.sealer, context.ip or "-")
    with deps.db.read() as conn:
        now = deps.clock.now()
        user = find_user(conn, username) if len(username) <= MAX_USERNAME else None
        assessed = assess(
            conn,
            deps.risk,
            deps.sealer,
            username=username[:MAX_USERNAME],
            user=user,
            ip=context.ip,
            device_credential=context.device_id,
            now=now,
        )
        by_account = throttles.account(familiar=assessed.familiar)
        account_key = by_account.key(deps.sealer, account_text(username))
        _check_throttles(throttles.by_address, by_account, conn, address_key, account_key, now=now)
    spraying = assessed.risk.spraying_retry_after
    if spraying is not None:  # before argon2: spraying must not cost us a hash per guess
        raise RateLimited(spraying, scope="spraying")
    failure, new_hash = _check_password(deps.hasher, user, password)
    with deps.db.begin() as conn:
        now = deps.clock.now()
        _check_throttles(throttles.by_address, by_account, conn, address_key, account_key, now=now)
        if user is not None and failure is None:  # the account may have changed meanwhile
            user, failure = _still_valid(conn, user)
        plan = None
        if user is not None and failure is None:
            enrolled = login_methods(conn, user.id)
            unusable = unavailable_methods(deps.relying_party, enrolled)
            plan = login_plan(assessed, enrolled, unavailable=unusable)
            failure = plan.refusal
        if failure is not None or plan is None:
            throttles.by_address.fail(conn, address_key, now=now)
            by_account.fail(conn, account_key, now=now)
            denied = failure is not None and failure.startswith("risk_")
            record_login_attempt(
                conn,
                assessed.risk,
                outcome="denied" if denied else "failure",
                tenant_id=user.tenant_id if user else None,
                now=now,
            )
            record(
                conn,
                "login.failure",
                outcome="denied" if denied else "failure",
                actor=user.id if user else None,
                tenant_id=user.tenant_id if user else None,
                reason=failure or "unknown_user",
                # An unknown username is not recorded: people type their password there.
                details={
                    "ip": context.ip,
                    "username": user.username if user else None,
                    **assessed.details,
                },
                now=now,
            )
            raise CommitThenRaise(InvalidCredentials())
        assert user is not None
        if new_hash is not None:
            set_password_hash(conn, user.id, new_hash, now=now)
        by_account.clear(conn, account_key)  # never the second-factor counts (authn.guessing)
        return _signed_in_with_password(
            deps, conn, user, plan, context=context, assessed=assessed, now=now
        )


def _check_throttles(
    by_address: FailureThrottle,
    by_account: FailureThrottle,
    conn: Connection,
    address_key: str,
    account_key: str,
    *,
    now: datetime,
) -> None:
    by_address.check(conn, address_key, now=now)
    by_account.check(conn, account_key, now=now)


def _check_password(
    hasher: PasswordHasher, user: User | None, password: str
) -> tuple[str | None, str | None]:
    """(why it failed or None, a fresh hash to store or None), after one argon2 verify
    whatever the case (an unknown user costs what a wrong password costs)."""
    if user is None or not user.active or user.password_hash is None:
        burn_dummy_verify(password[:MAX_PASSWORD], hasher=hasher)
        if user is None:
            return "unknown_user", None
        return ("no_password" if user.password_hash is None else f"user_{user.status}"), None
    try:
        checked = verify_password(stored_hash=user.password_hash, presented=password, hasher=hasher)
    except InvalidCredentials:
        return "bad_password", None
    if checked.needs_rehash:
        return None, hash_password(password, hasher=hasher)
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
    deps: AuthnDeps,
    conn: Connection,
    user: User,
    plan: LoginPlan,
    *,
    context: ClientContext,
    assessed: Assessed,
    now: datetime,
) -> LoginResult:
    """After a right password: tokens, an enrolment-only session, or the second step, as
    the policy's minimum raised by the risk engine asks (``authn.adaptive.login_plan``)."""
    risk = assessed.context()
    if plan.password_only:
        return finish(
            deps, conn, user, acr="aal1", amr=["pwd"], context=context, reason="password",
            now=now, risk=risk,
        )  # fmt: skip
    if plan.device:
        reached = compute_assurance(
            [VerifiedFactor(method=Method.PASSWORD, amr=("pwd",)), REMEMBERED_DEVICE_FACTOR]
        )
        return finish(
            deps, conn, user, acr=reached.acr, amr=list(reached.amr), context=context,
            reason="remembered_device", now=now, risk=risk,
        )  # fmt: skip
    if plan.enrol:
        tokens = start_session(
            conn,
            deps.sessions,
            user,
            acr="aal1",
            amr=["pwd"],
            auth_time=now,
            now=now,
            restricted=RESTRICTED_ENROLLMENT,
            ip=context.ip,
            user_agent=context.user_agent,
        )
        record(
            conn,
            "login.enrollment_required",
            outcome="challenge",
            actor=user.id,
            tenant_id=user.tenant_id,
            details={"username": user.username, "session_id": tokens.session_id},
            now=now,
        )
        return tokens
    offered = list(plan.methods)
    tx = open_transaction(
        conn,
        user_id=user.id,
        purpose="login",
        required_acr=plan.acr,
        verified=[PASSWORD_FACTOR],
        context={**context.as_dict(), "risk": assessed.context(offered)},
        now=now,
        ttl=deps.transaction_ttl,
    )
    record(
        conn,
        "login.mfa_required",
        outcome="challenge",
        actor=user.id,
        tenant_id=user.tenant_id,
        details={"username": user.username, "methods": offered, **assessed.details},
        now=now,
    )
    return mfa_required(
        tx,
        offered,
        now=now,
        risk_level=assessed.risk.decision.level.value,
        unavailable=plan.unavailable,
    )


def mfa_required(
    tx: Transaction,
    methods: list[str],
    *,
    now: datetime,
    risk_level: str | None = None,
    unavailable: Sequence[str] = (),
) -> MfaRequired:
    """The next step of ``tx``; a login's carries the risk level it was scored at."""
    if risk_level is None and tx.purpose == "login":
        risk_level = _saved_level(tx.context.get("risk"))
    return MfaRequired(
        transaction_id=tx.id,
        expires_in=max(0, int((tx.expires_at - now).total_seconds())),
        methods=tuple(methods),
        risk_level=risk_level,
        unavailable=tuple(unavailable),
    )


def _saved_level(risk: Mapping[str, Any] | None) -> str | None:
    level = risk_details(risk).get("risk_level")
    return str(level) if level is not None else None


def finish(
    deps: AuthnDeps,
    conn: Connection,
    user: User,
    *,
    acr: str,
    amr: list[str],
    context: ClientContext,
    reason: str,
    now: datetime,
    risk: Mapping[str, Any] | None = None,
    remember_device: bool = False,
    device_name: str | None = None,
) -> IssuedTokens:
    """A login that reached its assurance: a session, its tokens, the attempt recorded
    with its risk decision (``risk``: the transaction's saved context) and
    ``login.success``. ``remember_device``: issue a remembered-device credential with
    the tokens, only when this sign-in reached MFA (``amr`` has ``mfa``)."""
    policy = load_policy(conn, user.tenant_id)
    tokens = start_session(
        conn,
        deps.sessions,
        user,
        acr=acr,
        amr=amr,
        auth_time=now,
        now=now,
        ip=context.ip,
        user_agent=context.user_agent,
    )
    if remember_device and "mfa" in amr and acr_rank(acr) >= acr_rank("aal2"):
        credential = remember(
            conn, user, name=device_name, user_agent=context.user_agent, ip=context.ip,
            session_id=tokens.session_id, now=now,
        )  # fmt: skip
        tokens = replace(tokens, device_credential=credential)
    if risk is not None and "decision" in risk:
        record_login_outcome(
            conn,
            risk,
            outcome="success",
            tenant_id=user.tenant_id,
            policy=risk_policy(policy),
            now=now,
        )
    else:  # a sign-in the engine did not score (none today): still one record of it
        record_login(
            conn, at=now, outcome="success", tenant_id=user.tenant_id, user_id=user.id,
            username_key=None, ip=context.ip, location=deps.risk.locate(context.ip),
            decision=None, policy=risk_policy(policy),
        )  # fmt: skip
    record(
        conn,
        "login.success",
        actor=user.id,
        tenant_id=user.tenant_id,
        reason=reason,
        details={
            "username": user.username,
            "acr": acr,
            "amr": ",".join(amr),
            "session_id": tokens.session_id,
            **risk_details(risk),
        },
        now=now,
    )
    return tokens
