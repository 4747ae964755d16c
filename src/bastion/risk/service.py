"""The two calls a sign-in makes: assess (read phase) and record (write phase).

    with db.read() as conn:                       # before the password check
        risk = assess_login(conn, engine, policy=…, sealer=…, username=…, user=…, …)
    … argon2 verify, off any transaction …
    with db.begin() as conn:                      # the transaction that records the outcome
        record_login_attempt(conn, risk, outcome="success" | "failure" | "denied", …)

``assess_login`` loads the history in two queries (plus a lookup by hash when a device
credential was presented) and scores it; ``risk.requirement`` says what the login must
then ask for. It runs for unknown usernames too (their attempts feed the spraying and
reputation signals) and costs the same whether the password will be right or wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from bastion.risk.decision import LoginRequirement, RiskDecision, login_requirement
from bastion.risk.devices import device_credential_hash
from bastion.risk.engine import RiskEngine
from bastion.risk.policy import RiskPolicy
from bastion.risk.signals import LoginAttempt, LoginHistory
from bastion.risk.store import load_login_history, record_login, touch_device, username_key
from bastion.sealing import Sealer

__all__ = ["LoginRisk", "assess_login", "record_login_attempt"]


@dataclass(frozen=True, slots=True)
class LoginRisk:
    """One attempt's assessment, carried from the read phase to the write phase."""

    attempt: LoginAttempt
    history: LoginHistory
    decision: RiskDecision
    requirement: LoginRequirement
    username_key: str
    policy: RiskPolicy


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
    attempt = risk.attempt
    record_login(
        conn,
        at=now,
        outcome=outcome,
        tenant_id=tenant_id,
        user_id=attempt.user_id,
        username_key=risk.username_key,
        ip=attempt.ip,
        location=attempt.location,
        decision=risk.decision,
        policy=risk.policy,
    )
    if outcome == "success" and risk.decision.device_id is not None:
        touch_device(conn, risk.decision.device_id, ip=attempt.ip, now=now)
