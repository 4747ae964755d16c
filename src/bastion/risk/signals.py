"""Login signals: small pure functions of the attempt, its stored history and the policy.

Each returns the reasons it found (``Contribution``, weight and floor from the policy);
none reads a database, the network or a clock: the attempt carries its own ``at`` and
location, the history was loaded by ``risk.store`` in one or two queries, and the
installation-wide anonymiser list is passed in. ``LOGIN_SIGNALS`` is the registry the
engine runs, in this order; the order only decides the order of the reasons in audit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bastion.risk.devices import DeviceRecord, DeviceState, device_state
from bastion.risk.geo import Location
from bastion.risk.hours import is_usual_hour, local_hour
from bastion.risk.networks import NetworkSet, is_local, parse_address
from bastion.risk.policy import RiskPolicy
from bastion.risk.reasons import Contribution
from bastion.risk.travel import Travel, implied_travel

__all__ = [
    "LOGIN_SIGNALS",
    "LoginAttempt",
    "LoginHistory",
    "PastLogin",
    "contribution",
    "country_reasons",
    "network_reasons",
    "travel_contribution",
]

ALL_USERS_ROLE = "*"  # a role_hours entry that applies to every user of the tenant


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """One sign-in attempt as the engine sees it (all facts, no I/O left to do)."""

    at: datetime
    ip: str | None
    location: Location
    user_id: str | None  # None: the username matches no user
    roles: tuple[str, ...] = ()
    device_presented: bool = False


@dataclass(frozen=True, slots=True)
class PastLogin:
    """A successful sign-in from the user's history."""

    at: datetime
    network: str | None
    location: Location
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class LoginHistory:
    """What ``risk.store.load_login_history`` found (newest successes first)."""

    successes: tuple[PastLogin, ...] = ()
    user_failures: int = 0  # failures of this user in the velocity window
    address_failures: int = 0  # failures from this network in the window
    address_usernames: int = 0  # distinct usernames failing from this network in the window
    address_reputation: float = 0.0  # decayed failures of this network, as of the attempt
    device: DeviceRecord | None = None  # the presented credential's record (any user's)


@dataclass(frozen=True, slots=True)
class LoginFacts:
    attempt: LoginAttempt
    history: LoginHistory
    anonymisers: NetworkSet


def contribution(policy: RiskPolicy, code: str, **detail: str | int | float | None) -> Contribution:
    weight, floor = policy.reason(code)
    return Contribution(code, weight, floor, detail)


# -- shared by login and session evaluation -----------------------------------------------


def network_reasons(
    ip: str | None, policy: RiskPolicy, anonymisers: NetworkSet
) -> list[Contribution]:
    address = parse_address(ip)
    if address is None:
        return []
    found = []
    if address in policy.blocked:
        found.append(contribution(policy, "network_blocked"))
    if address in policy.trusted:
        found.append(contribution(policy, "network_trusted"))
    if address in anonymisers:
        found.append(contribution(policy, "network_anonymiser"))
    if is_local(address) and not found:
        found.append(contribution(policy, "network_local"))
    return found


def country_reasons(location: Location, policy: RiskPolicy) -> list[Contribution]:
    """Allow / block lists. A local address is never refused by them; an unplaceable
    public one fails a non-empty allow list (closed, not open)."""
    if location.local:
        return []
    country = location.country
    if country is not None and country in policy.blocked_countries:
        return [contribution(policy, "country_blocked", country=country)]
    if policy.allowed_countries and country not in policy.allowed_countries:
        return [contribution(policy, "country_not_allowed", country=country)]
    if country is None:
        return [contribution(policy, "country_unknown")]
    return []


# -- login signals --------------------------------------------------------------------------


def device_signal(facts: LoginFacts, policy: RiskPolicy) -> list[Contribution]:
    attempt, record = facts.attempt, facts.history.device
    state = device_state(
        presented=attempt.device_presented, record=record, user_id=attempt.user_id, now=attempt.at
    )
    if state is DeviceState.RECOGNISED:
        assert record is not None
        return [contribution(policy, "device_recognised", device_id=record.id)]
    if state is DeviceState.REVOKED:
        assert record is not None
        return [contribution(policy, "device_revoked", device_id=record.id)]
    return [contribution(policy, "device_unknown", presented=state is DeviceState.UNKNOWN)]


def network_signal(facts: LoginFacts, policy: RiskPolicy) -> list[Contribution]:
    found = network_reasons(facts.attempt.ip, policy, facts.anonymisers)
    reputation = facts.history.address_reputation
    if reputation >= policy.reputation_failures:
        found.append(contribution(policy, "address_reputation", failures=round(reputation, 1)))
    return found


def geo_signal(facts: LoginFacts, policy: RiskPolicy) -> list[Contribution]:
    location = facts.attempt.location
    found = country_reasons(location, policy)
    if found or location.country is None:
        return found
    seen = {past.location.country for past in facts.history.successes} - {None}
    if seen and location.country not in seen:
        found.append(contribution(policy, "country_new", country=location.country))
    return found


def travel_signal(facts: LoginFacts, policy: RiskPolicy) -> list[Contribution]:
    attempt = facts.attempt
    since = attempt.at - timedelta(hours=policy.lookback_hours)
    fastest: tuple[PastLogin, Travel] | None = None
    for past in facts.history.successes:
        if past.at < since:
            break  # newest first: the rest are older still
        travel = implied_travel(
            origin=past.location,
            origin_at=past.at,
            destination=attempt.location,
            destination_at=attempt.at,
            tolerance_km=policy.tolerance_km,
        )
        if travel is not None and (fastest is None or travel.speed_kmh > fastest[1].speed_kmh):
            fastest = (past, travel)
    if fastest is None or fastest[1].speed_kmh <= policy.max_speed_kmh:
        return []
    past, travel = fastest
    return [travel_contribution(policy, past.location, attempt.location, travel)]


def travel_contribution(
    policy: RiskPolicy, origin: Location, destination: Location, travel: Travel
) -> Contribution:
    return contribution(
        policy,
        "impossible_travel",
        from_country=origin.country,
        to_country=destination.country,
        km=round(travel.distance_km),
        hours=round(travel.hours, 2),
        kmh=None if math.isinf(travel.speed_kmh) else round(travel.speed_kmh),
    )


def hours_signal(facts: LoginFacts, policy: RiskPolicy) -> list[Contribution]:
    attempt = facts.attempt
    found = []
    outside = [
        role
        for role in sorted({*attempt.roles, ALL_USERS_ROLE})
        if (window := policy.role_hours.get(role)) is not None and not window.contains(attempt.at)
    ]
    if outside:
        found.append(contribution(policy, "hours_outside_role", roles=",".join(outside)))
    successes = facts.history.successes
    if len(successes) >= policy.usual_min_history:
        hour = local_hour(attempt.at, policy.time_zone)
        seen = {local_hour(past.at, policy.time_zone) for past in successes}
        if not is_usual_hour(hour, seen, margin=policy.usual_margin_hours):
            found.append(contribution(policy, "hours_unusual", hour=hour, zone=policy.time_zone))
    return found


def velocity_signal(facts: LoginFacts, policy: RiskPolicy) -> list[Contribution]:
    attempt, history = facts.attempt, facts.history
    found = []
    if history.user_failures >= policy.user_failures:
        found.append(contribution(policy, "user_failures", failures=history.user_failures))
    if history.address_usernames >= policy.spraying_usernames:
        found.append(
            contribution(
                policy,
                "address_spraying",
                usernames=history.address_usernames,
                failures=history.address_failures,
                window_s=policy.window_seconds,
            )
        )
    if attempt.user_id is not None and not history.successes:
        found.append(contribution(policy, "first_login"))
    return found


LoginSignal = Callable[[LoginFacts, RiskPolicy], list[Contribution]]

LOGIN_SIGNALS: tuple[LoginSignal, ...] = (
    device_signal,
    network_signal,
    geo_signal,
    travel_signal,
    hours_signal,
    velocity_signal,
)
