"""Sign-in history for a decision, attempts and decisions recorded, reputation, pruning.

``load_login_history`` gives a login everything its signals read in two queries (plus a
lookup by hash when a device credential was presented): the user's recent successful
sign-ins, and one row of counts (the user's failures, the network's failures and distinct
usernames in the velocity window, the network's decayed reputation). The statements are
built once; SQLite and PostgreSQL run the same SQL.

Typed usernames are stored as keyed fingerprints (``username_key``), never as typed
(people type their password into the username field).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from bastion.risk.decision import RiskDecision
from bastion.risk.geo import Location
from bastion.risk.networks import network_key, parse_address
from bastion.risk.policy import RiskPolicy
from bastion.risk.reasons import Outcome
from bastion.risk.schema import risk_address_reputation, risk_devices, risk_events, risk_usage
from bastion.risk.signals import LoginHistory, PastLogin
from bastion.risk.store.devices import find_device
from bastion.risk.store.sql import upsert
from bastion.sealing import Sealer
from bastion.storage import new_id

__all__ = [
    "HISTORY_LIMIT",
    "FlaggedEvent",
    "forgive_failures",
    "load_login_history",
    "network_of",
    "prune",
    "recent_flagged",
    "record_login",
    "record_session_decision",
    "username_key",
]

HISTORY_LIMIT = 50  # successful sign-ins a decision looks at (travel, countries, hours)

_e = risk_events.c
_SUCCESSES = (
    select(_e.at, _e.network, _e.country, _e.latitude, _e.longitude, _e.radius_km, _e.device_id)
    .where(
        _e.principal_id == bindparam("user_id"),
        _e.kind == "login",
        _e.outcome == "success",
    )
    .order_by(_e.at.desc())
    .limit(HISTORY_LIMIT)
)


def _failures(*where: Any) -> Any:
    return select(func.count()).where(_e.outcome == "failure", _e.at > bindparam("since"), *where)


_COUNTS = select(
    _failures(_e.principal_id == bindparam("user_id")).scalar_subquery().label("user_failures"),
    _failures(_e.network == bindparam("network")).scalar_subquery().label("address_failures"),
    select(func.count(func.distinct(_e.username_key)))
    .where(_e.outcome == "failure", _e.at > bindparam("since"), _e.network == bindparam("network"))
    .scalar_subquery()
    .label("address_usernames"),
    select(risk_address_reputation.c.failures)
    .where(risk_address_reputation.c.network == bindparam("network"))
    .scalar_subquery()
    .label("reputation"),
    select(risk_address_reputation.c.updated_at)
    .where(risk_address_reputation.c.network == bindparam("network"))
    .scalar_subquery()
    .label("reputation_at"),
)


def username_key(sealer: Sealer, username: str) -> str:
    """The stored form of a typed username: HMAC fingerprint, never the text."""
    data = username.strip().casefold()[:256].encode("utf-8", "surrogatepass")
    return sealer.fingerprint(data, context=b"risk:username")


def network_of(ip: str | None) -> str | None:
    address = parse_address(ip)
    return network_key(address) if address is not None else None


def _decayed(failures: float, since: datetime, now: datetime, half_life_hours: float) -> float:
    hours = max(0.0, (now - since).total_seconds() / 3600)
    return failures * math.pow(0.5, hours / half_life_hours)


def load_login_history(
    conn: Connection,
    *,
    user_id: str | None,
    ip: str | None,
    device_hash: str | None,
    policy: RiskPolicy,
    now: datetime,
) -> LoginHistory:
    """Everything the login signals read, as of ``now``."""
    successes: tuple[PastLogin, ...] = ()
    if user_id is not None:
        successes = tuple(
            PastLogin(
                at=row.at,
                network=row.network,
                location=Location(row.country, row.latitude, row.longitude, row.radius_km or 0.0),
                device_id=row.device_id,
            )
            for row in conn.execute(_SUCCESSES, {"user_id": user_id})
        )
    since = now - timedelta(seconds=policy.window_seconds)
    counts = conn.execute(
        _COUNTS, {"user_id": user_id, "network": network_of(ip), "since": since}
    ).one()
    reputation = 0.0
    if counts.reputation is not None and counts.reputation_at is not None:
        reputation = _decayed(
            counts.reputation, counts.reputation_at, now, policy.reputation_half_life_hours
        )
    return LoginHistory(
        successes=successes,
        user_failures=counts.user_failures if user_id is not None else 0,
        address_failures=counts.address_failures,
        address_usernames=counts.address_usernames,
        address_reputation=reputation,
        device=find_device(conn, device_hash) if device_hash is not None else None,
    )


def _location_columns(location: Location) -> dict[str, Any]:
    return {
        "country": location.country,
        "latitude": location.latitude,
        "longitude": location.longitude,
        "radius_km": location.radius_km if location.has_point else None,
    }


def _decision_columns(decision: RiskDecision | None) -> dict[str, Any]:
    if decision is None:
        return {"score": None, "level": None, "decision": None, "reasons": []}
    return {
        "score": decision.score,
        "level": decision.level.value,
        "decision": decision.outcome.label,
        "reasons": [reason.as_audit() for reason in decision.reasons],
    }


def record_login(
    conn: Connection,
    *,
    at: datetime,
    outcome: str,
    tenant_id: str | None,
    user_id: str | None,
    username_key: str | None,
    ip: str | None,
    location: Location,
    decision: RiskDecision | None,
    policy: RiskPolicy,
) -> None:
    """One sign-in attempt: ``success`` (tokens issued), ``failure`` (a wrong password or
    code) or ``denied`` (the engine refused). A failure also worsens the network's
    reputation. Run it in the transaction that records the attempt's outcome."""
    if outcome not in ("success", "failure", "denied"):
        raise ValueError(f"unknown login outcome {outcome!r}")
    network = network_of(ip)
    conn.execute(
        insert(risk_events),
        {
            "id": new_id("rsk"),
            "at": at,
            "kind": "login",
            "outcome": outcome,
            "tenant_id": tenant_id,
            "principal_id": user_id,
            "username_key": username_key,
            "ip": ip,
            "network": network,
            "device_id": decision.device_id if decision is not None else None,
            **_location_columns(location),
            **_decision_columns(decision),
        },
    )
    if outcome == "failure" and network is not None:
        _worsen_reputation(conn, network, now=at, half_life_hours=policy.reputation_half_life_hours)


def forgive_failures(conn: Connection, *, user_id: str) -> int:
    """An admin's unlock: the user's failed sign-ins stop counting as velocity (their
    rows stay, marked ``forgiven``; the networks' reputations are not touched)."""
    return conn.execute(
        update(risk_events)
        .where(_e.principal_id == user_id, _e.kind == "login", _e.outcome == "failure")
        .values(outcome="forgiven")
    ).rowcount


def _worsen_reputation(
    conn: Connection, network: str, *, now: datetime, half_life_hours: float
) -> None:
    r = risk_address_reputation.c
    row = conn.execute(select(r.failures, r.updated_at).where(r.network == network)).first()
    failures = 1.0
    if row is not None:
        failures += _decayed(row.failures, row.updated_at, now, half_life_hours)
    values = {"network": network, "failures": failures, "updated_at": now}
    upsert(conn, risk_address_reputation, values, ["network"], lambda _: values)


def record_session_decision(
    conn: Connection,
    *,
    at: datetime,
    tenant_id: str | None,
    principal_id: str,
    ip: str | None,
    decision: RiskDecision,
) -> None:
    """A continuous-evaluation decision above "allow" (step-up asked, or session ended)."""
    conn.execute(
        insert(risk_events),
        {
            "id": new_id("rsk"),
            "at": at,
            "kind": "session",
            "outcome": "denied" if decision.outcome is Outcome.DENY else "challenge",
            "tenant_id": tenant_id,
            "principal_id": principal_id,
            "username_key": None,
            "ip": ip,
            "network": network_of(ip),
            "device_id": None,
            **_location_columns(decision.location),
            **_decision_columns(decision),
        },
    )


@dataclass(frozen=True)
class FlaggedEvent:
    """A medium or high decision, for ``GET /admin/risk/events``."""

    id: str
    at: datetime
    kind: str
    outcome: str
    tenant_id: str | None
    principal_id: str | None
    ip: str | None
    country: str | None
    score: int
    level: str
    decision: str
    reasons: list[dict[str, Any]]


def recent_flagged(
    conn: Connection,
    *,
    tenant_id: str | None,
    limit: int = 100,
    before: datetime | None = None,
    after_id: str | None = None,
) -> list[FlaggedEvent]:
    """Newest first (by time, then id); ``tenant_id=None`` is every tenant (and unknown
    usernames): only for the installation's admins. ``after_id``: the page after the
    event of that id (a stable cursor: events of one instant are not skipped)."""
    query = select(risk_events).where(_e.level.in_(("medium", "high")))
    if tenant_id is not None:
        query = query.where(_e.tenant_id == tenant_id)
    if before is not None:
        query = query.where(_e.at < before)
    if after_id is not None:
        mark = conn.execute(select(_e.at).where(_e.id == after_id)).scalar()
        if mark is None:
            return []
        query = query.where(or_(_e.at < mark, and_(_e.at == mark, _e.id < after_id)))
    ordered = query.order_by(_e.at.desc(), _e.id.desc())
    rows = conn.execute(ordered.limit(max(1, min(limit, 1000))))
    return [
        FlaggedEvent(
            id=r.id,
            at=r.at,
            kind=r.kind,
            outcome=r.outcome,
            tenant_id=r.tenant_id,
            principal_id=r.principal_id,
            ip=r.ip,
            country=r.country,
            score=r.score,
            level=r.level,
            decision=r.decision,
            reasons=list(r.reasons),
        )
        for r in rows
    ]


# -- remembered devices ------------------------------------------------------------------


def prune(conn: Connection, *, now: datetime, keep_days: int = 90) -> None:
    """Forget events, reputations and usage older than ``keep_days``, and devices that
    expired that long ago (housekeeping, e.g. hourly)."""
    before = now - timedelta(days=keep_days)
    conn.execute(delete(risk_events).where(_e.at < before))
    conn.execute(
        delete(risk_address_reputation).where(risk_address_reputation.c.updated_at < before)
    )
    conn.execute(delete(risk_usage).where(risk_usage.c.hour < before))
    conn.execute(delete(risk_devices).where(risk_devices.c.expires_at < before))
