"""The risk engine at sign-in (issue 15): assess in the read phase, act in the write phase.

``assess`` runs before the password is checked, for known and unknown usernames alike
(the same queries either way: the tenant's policy, the history, the counts). What it
returns decides, in ``authn.login``:

- ``spraying_retry_after``: this address is trying many usernames: ``429`` before argon2;
- ``requirement.deny``: refused exactly like a wrong password (same body, same argon2);
- ``requirement.acr`` and ``phishing_resistant``: what the second step must reach, with
  which methods (``login_plan``); never below the tenant policy's own minimum;
- ``familiar``: whether the user signed in from this network before (the account
  throttle's two counts, ``authn.familiar``), read from the same history.

The attempt is recorded once, by ``risk.record_login_attempt`` (or, when a second factor
finishes it, ``risk.record_login_outcome`` from the transaction's ``context``): the
familiar-address check and the engine read the one history. A wrong second-factor code
or a refused assertion (at sign-in or step-up) is recorded too, as a failed sign-in of
its user (``record_factor_failure``): a burst of them raises the next decision
(``user_failures``, the network's reputation) as wrong passwords do. A refused
passwordless passkey answer is one too (``record_refused_passkey``): of the network
always, and of the user whose registered credential it named when there is one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from bastion.authn.familiar import FAMILIAR_DAYS
from bastion.authz import Policy
from bastion.errors import ConfigurationError, ValidationError
from bastion.identity.grants import grants_of
from bastion.identity.rules import load_policy
from bastion.identity.tenants import tenant_by_name
from bastion.identity.users import User
from bastion.risk import (
    LoginRisk,
    RiskDecision,
    RiskEngine,
    RiskPolicy,
    allowed_methods,
    assess_login,
    load_risk_policy,
)
from bastion.risk.store import network_of, record_login, username_key
from bastion.sealing import Sealer

__all__ = [
    "Assessed",
    "LoginPlan",
    "assess",
    "login_plan",
    "record_factor_failure",
    "record_refused_passkey",
    "risk_allowed",
    "risk_details",
    "risk_policy",
]

DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Assessed:
    """A sign-in attempt scored before its password is checked."""

    risk: LoginRisk
    policy: Policy  # the tenant's (the default tenant's for an unknown username)
    familiar: bool

    @property
    def details(self) -> dict[str, Any]:
        return self.risk.decision.audit_details()

    def context(self, methods: Sequence[str] = ()) -> dict[str, Any]:
        """What the login transaction keeps: the decision (to record the outcome) and
        the methods the requirement allows (``verify_factor`` accepts only those)."""
        return {**self.risk.as_context(), "methods": list(methods)}


def assess(
    conn: Connection,
    engine: RiskEngine,
    sealer: Sealer,
    *,
    username: str,
    user: User | None,
    ip: str | None,
    device_credential: str | None,
    now: datetime,
) -> Assessed:
    tenant_id = user.tenant_id if user is not None else _default_tenant_id(conn)
    policy = load_policy(conn, tenant_id) if tenant_id is not None else Policy()
    # Read for an unknown username too: both cost the same queries.
    grants = grants_of(conn, "user", user.id if user is not None else "-")
    roles = sorted({grant.role for grant in grants})
    risk = assess_login(
        conn,
        engine,
        policy=risk_policy(policy),
        sealer=sealer,
        username=username,
        user_id=user.id if user is not None else None,
        roles=roles,
        ip=ip,
        device_credential=device_credential,
        minimum_acr=policy.login_acr,
        now=now,
    )
    network = network_of(ip)
    since = now - timedelta(days=FAMILIAR_DAYS)
    familiar = (
        user is not None
        and network is not None
        and any(p.network == network and p.at >= since for p in risk.history.successes)
    )
    return Assessed(risk, policy, familiar)


def risk_policy(policy: Policy) -> RiskPolicy:
    """The tenant's risk policy (validated when it was saved; remembered per document)."""
    try:
        return load_risk_policy(policy.risk_document)
    except ValidationError as exc:  # stored by an older version, or by hand
        raise ConfigurationError(f"The stored risk policy is not valid: {exc}") from None


def _default_tenant_id(conn: Connection) -> str | None:
    tenant = tenant_by_name(conn, DEFAULT_TENANT)
    return tenant.id if tenant is not None else None


@dataclass(frozen=True)
class LoginPlan:
    """What follows a right password: ``refusal`` (a failure reason: the attempt fails like a
    wrong password), ``password_only`` (tokens at aal1), ``device`` (password + the
    remembered device), ``enrol`` (the restricted enrolment token) or ``methods`` (the
    second factors to offer, at ``acr``; ``unavailable``: those allowed that this server
    cannot run, named in the answer, never offered)."""

    acr: str
    refusal: str | None = None
    password_only: bool = False
    device: bool = False
    enrol: bool = False
    methods: tuple[str, ...] = ()
    unavailable: tuple[str, ...] = ()


def login_plan(
    assessed: Assessed, enrolled: Sequence[str], *, unavailable: Sequence[str] = ()
) -> LoginPlan:
    requirement = assessed.risk.requirement
    acr = requirement.acr
    if requirement.deny:
        return LoginPlan(acr, refusal="risk_denied")
    if acr == "aal1":  # the policy allows a password alone and the risk is low
        return LoginPlan(acr, password_only=True)
    if requirement.remembered_device_counts and acr == "aal2":
        return LoginPlan(acr, device=True)
    if not enrolled:
        if assessed.policy.mfa_required and requirement.enrollment_allowed:
            return LoginPlan(acr, enrol=True)
        return LoginPlan(acr, refusal="risk_no_factor")
    methods = allowed_methods(requirement, enrolled)
    offered = tuple(method for method in methods if method not in unavailable)
    # A phishing-resistant factor is asked and the user has none (or none that works
    # here): refused like a wrong password, as for any user without one.
    if not methods or (requirement.phishing_resistant and not offered):
        return LoginPlan(acr, refusal="risk_no_factor")
    return LoginPlan(
        acr,
        methods=offered,
        unavailable=tuple(method for method in methods if method in unavailable),
    )


def risk_details(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """``risk_level``, ``risk_score``, ``risk_reasons`` of a transaction's saved decision."""
    if not context or "decision" not in context:
        return {}
    return RiskDecision.from_record(context["decision"]).audit_details()


def risk_allowed(context: Mapping[str, Any], available: Sequence[str]) -> list[str]:
    """The methods of ``available`` a login transaction may use: those its risk
    requirement allowed when it was opened (all of them for a step-up, not scored)."""
    risk = context.get("risk")
    if not isinstance(risk, Mapping) or "methods" not in risk:
        return list(available)
    allowed = set(risk["methods"])
    return [method for method in available if method in allowed]


def record_factor_failure(
    conn: Connection,
    engine: RiskEngine,
    sealer: Sealer,
    user: User,
    *,
    ip: str | None,
    now: datetime,
) -> None:
    """A wrong second-factor code or a refused assertion of ``user`` from ``ip``: a failed
    sign-in to the risk engine (the user's failures, the network's failures and
    reputation). Not a decision: no level, so it is not listed as one."""
    record_login(
        conn,
        at=now,
        outcome="failure",
        tenant_id=user.tenant_id,
        user_id=user.id,
        username_key=username_key(sealer, user.username),
        ip=ip,
        location=engine.locate(ip),
        decision=None,
        policy=risk_policy(load_policy(conn, user.tenant_id)),
    )


def record_refused_passkey(
    conn: Connection,
    engine: RiskEngine,
    sealer: Sealer,
    user: User | None,
    *,
    ip: str | None,
    now: datetime,
) -> None:
    """A passwordless passkey answer refused before the engine scored a user (an unknown
    credential, a signature, origin, RP or flag refused, an expired transaction): a failed
    sign-in from ``ip`` (the network's failures and reputation) and, when the answer named
    a registered credential, of its ``user`` too (``user_failures``), as a wrong password
    typed for that username is. Not a decision: no level."""
    if user is not None:
        record_factor_failure(conn, engine, sealer, user, ip=ip, now=now)
        return
    tenant_id = _default_tenant_id(conn)
    policy = load_policy(conn, tenant_id) if tenant_id is not None else Policy()
    record_login(
        conn,
        at=now,
        outcome="failure",
        tenant_id=None,
        user_id=None,
        username_key=None,
        ip=ip,
        location=engine.locate(ip),
        decision=None,
        policy=risk_policy(policy),
    )
