"""The two calls a sign-in makes: assess (read phase) and record (write phase).

    with db.read() as conn:                       # before the password check
        risk = assess_login(conn, engine, policy=…, sealer=…, username=…, user=…, …)
    … argon2 verify, off any transaction …
    with db.begin() as conn:                      # the transaction that records the outcome
        record_login_attempt(conn, risk, outcome="success" | "failure" | "denied", …)

A login that needs a second factor finishes in another request: keep
``risk.as_context()`` in the login transaction and record with ``record_login_outcome``.

``assess_login`` loads the history in two queries (plus a lookup by hash when a device
credential was presented) and scores it; ``risk.requirement`` says what the login must
then ask for. It runs for unknown usernames too (their attempts feed the spraying and
reputation signals) and costs the same whether the password will be right or wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bastion.risk.decision import LoginRequirement, RiskDecision, login_requirement
from bastion.risk.devices import device_credential_hash
from bastion.risk.engine import RiskEngine
from bastion.risk.policy import RiskPolicy
from bastion.risk.signals import LoginAttempt, LoginHistory
from bastion.risk.store import load_login_history, record_login, touch_device, username_key
from bastion.sealing import Sealer

__all__ = ["LoginRisk", "assess_login", "record_login_attempt", "record_login_outcome"]


@dataclass(frozen=True, slots=True)
class LoginRisk:
    """One attempt's assessment, carried from the read phase to the write phase."""

    attempt: LoginAttempt
    history: LoginHistory
    decision: RiskDecision
    requirement: LoginRequirement
    username_key: str
    policy: RiskPolicy

    @property
    def spraying_retry_after(self) -> int | None:
        """Seconds to answer ``429`` for when this address is spraying usernames (the
        velocity window), before any password check; None otherwise, and never for a
        trusted network (an office NAT after a password rotation is not an attack)."""
        codes = set(self.decision.codes)
        if "address_spraying" in codes and "network_trusted" not in codes:
            return self.policy.window_seconds
        return None

    def as_context(self) -> dict[str, Any]:
        """What a login transaction keeps (in its ``context`` JSON) so the request that
        finishes it can record the outcome: ``record_login_outcome``."""
        return {
            "decision": self.decision.as_record(),
            "ip": self.attempt.ip,
            "user_id": self.attempt.user_id,
            "username_key": self.username_key,
        }


def assess_login(
    conn: Connection,
    engine: RiskEngine,
    *,
    policy: RiskPolicy,
    sealer: Sealer,
    username: str,
    user_id: str | None,
    roles: Sequence[str],
    ip: str | None,
    device_credential: str | None,
    minimum_acr: str,
    now: datetime,
) -> LoginRisk:
    """Score a sign-in attempt of ``username`` (``user_id`` None when no such user).

    ``minimum_acr`` is the policy's own requirement for a login (``aal2`` when MFA is
    required): the result's ``requirement`` is never below it.
    """
    device_hash = device_credential_hash(device_credential)
    history = load_login_history(
        conn, user_id=user_id, ip=ip, device_hash=device_hash, policy=policy, now=now
    )
    attempt = LoginAttempt(
        at=now,
        ip=ip,
        location=engine.locate(ip),
        user_id=user_id,
        roles=tuple(roles),
        device_presented=device_credential is not None,
    )
    decision = engine.assess_login(attempt, history, policy)
    return LoginRisk(
        attempt=attempt,
        history=history,
        decision=decision,
        requirement=login_requirement(minimum_acr=minimum_acr, decision=decision),
        username_key=username_key(sealer, username),
        policy=policy,
    )


def record_login_attempt(
    conn: Connection,
    risk: LoginRisk,
    *,
    outcome: str,
    tenant_id: str | None,
    now: datetime,
) -> None:
    """Record the attempt's outcome (``success``: tokens issued; ``failure``: a wrong
    password or code; ``denied``: refused by the engine) in the caller's transaction.
    A success with a recognised device refreshes the device's last use."""
    record_login_outcome(
        conn, risk.as_context(), outcome=outcome, tenant_id=tenant_id, policy=risk.policy, now=now
    )


def record_login_outcome(
    conn: Connection,
    context: Mapping[str, Any],
    *,
    outcome: str,
    tenant_id: str | None,
    policy: RiskPolicy,
    now: datetime,
) -> None:
    """``record_login_attempt`` from a login transaction's saved ``as_context()`` (the
    second factor is verified by another request than the one that scored the attempt)."""
    decision = RiskDecision.from_record(context["decision"])
    record_login(
        conn,
        at=now,
        outcome=outcome,
        tenant_id=tenant_id,
        user_id=context["user_id"],
        username_key=context["username_key"],
        ip=context["ip"],
        location=decision.location,
        decision=decision,
        policy=policy,
    )
    if outcome == "success" and decision.device_id is not None:
        touch_device(conn, decision.device_id, ip=context["ip"], now=now)
