"""Continuous evaluation of a session: where its token is used from, request by request.

Zero trust re-evaluates while a session is used, not only at its login. The guard calls
``SessionWatch.check`` on every authenticated request with what it already has: the
session id, the client address, the address and time the session signed in from (the
session row, re-read with the liveness state) and the tenant's risk policy.

The cost on a request that changes nothing is one dictionary lookup and two identity
comparisons (same address, same policy object): nanoseconds, nothing measurable next
to a cached request. Only a *new address* for a session (or a new policy) runs the
signals: network lists, the country lists, travel since the session's previous use (or
its sign-in) faster than the policy allows, or else a country change since sign-in (an
impossible journey already says the country changed: it is not counted twice). The
verdict is remembered for that (session, address), so a challenged token is challenged
again on every request from there until the user steps up, which starts a new session
whose origin is the new address.

State is per process and bounded (cleared whole past ``max_entries``, like the liveness
cache): losing it costs only the "previous use" of the travel check, the origin comes
from the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bastion.risk.decision import ACR_ORDER, RiskDecision, decide
from bastion.risk.engine import RiskEngine
from bastion.risk.geo import Location
from bastion.risk.networks import network_key, parse_address
from bastion.risk.policy import RiskPolicy
from bastion.risk.reasons import Outcome
from bastion.risk.signals import (
    contribution,
    country_reasons,
    network_reasons,
    travel_contribution,
)
from bastion.risk.travel import implied_travel

__all__ = ["Challenge", "SessionWatch"]

DEFAULT_MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class Challenge:
    """The continuous evaluation wants more than the token has.

    ``deny``: end the session (revoke it) and refuse the request. Otherwise answer the
    RFC 9470 challenge with ``acr`` and a ``max_age`` that only a token authenticated at
    or after ``since`` meets (``satisfied_by``).
    """

    decision: RiskDecision
    since: datetime

    @property
    def deny(self) -> bool:
        return self.decision.outcome is Outcome.DENY

    @property
    def acr(self) -> str:
        return self.decision.outcome.step_up_acr or "aal3"

    def satisfied_by(self, *, acr: str, auth_time: datetime | None) -> bool:
        """Whether a token with ``acr`` that authenticated at ``auth_time`` meets it.

        ``auth_time=None`` (a principal that cannot step up, e.g. an API key) never does.
        """
        if self.deny or auth_time is None or auth_time < self.since:
            return False
        return acr in ACR_ORDER and ACR_ORDER.index(acr) >= ACR_ORDER.index(self.acr)


@dataclass(slots=True)
class _Seen:
    ip: str | None
    at: datetime
    location: Location
    policy: RiskPolicy
    challenge: Challenge | None


OnDecision = Callable[[str, RiskDecision], None]


class SessionWatch:
    """Per-process memory of where each session was last used, and its verdict there."""

    def __init__(
        self,
        engine: RiskEngine,
        *,
        on_decision: OnDecision | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.engine = engine
        self.on_decision = on_decision  # called on the slow path for non-allow decisions
        self.max_entries = max_entries
        self._seen: dict[str, _Seen] = {}

    def check(
        self,
        *,
        key: str,
        ip: str | None,
        origin_ip: str | None,
        origin_at: datetime | None,
        policy: RiskPolicy,
        now: datetime,
    ) -> Challenge | None:
        """The challenge for this use of session ``key`` from ``ip``, or None."""
        seen = self._seen.get(key)
        if seen is not None and seen.ip == ip and seen.policy is policy:
            seen.at = now
            return seen.challenge
        return self._evaluate(key, seen, ip, origin_ip, origin_at, policy, now)

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)

    def _evaluate(
        self,
        key: str,
        seen: _Seen | None,
        ip: str | None,
        origin_ip: str | None,
        origin_at: datetime | None,
        policy: RiskPolicy,
        now: datetime,
    ) -> Challenge | None:
        engine = self.engine
        location = engine.locate(ip)
        reasons = network_reasons(ip, policy, engine.anonymisers)
        reasons += country_reasons(location, policy)
        origin = engine.locate(origin_ip)
        here, there = parse_address(ip), parse_address(origin_ip)
        if here is not None and there is not None and network_key(here) != network_key(there):
            reasons.append(contribution(policy, "session_address_changed"))
        previous, previous_at = (seen.location, seen.at) if seen else (origin, origin_at)
        travel = None
        if previous_at is not None:
            travel = implied_travel(
                origin=previous,
                origin_at=previous_at,
                destination=location,
                destination_at=now,
                tolerance_km=policy.tolerance_km,
            )
        if travel is not None and travel.speed_kmh > policy.max_speed_kmh:
            # the token moved too fast: that says more than (and includes) a new country
            reasons.append(travel_contribution(policy, previous, location, travel))
        elif origin.country and location.country and origin.country != location.country:
            reasons.append(
                contribution(
                    policy,
                    "session_country_changed",
                    from_country=origin.country,
                    to_country=location.country,
                )
            )
        decision = decide(reasons, policy.thresholds, context="session", location=location)
        challenge = None
        if decision.outcome is not Outcome.ALLOW:
            challenge = Challenge(decision, since=now)
            if self.on_decision is not None:
                self.on_decision(key, decision)
        if len(self._seen) >= self.max_entries:
            self._seen.clear()
        self._seen[key] = _Seen(ip, now, location, policy, challenge)
        return challenge
