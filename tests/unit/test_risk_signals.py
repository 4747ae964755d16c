"""Each login signal on its own: pure functions of the attempt, the history and the policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.support.risk import (
    BERLIN,
    LAN,
    NEW_YORK,
    PARIS,
    PARIS_HOME,
    PARIS_OFFICE,
    SYDNEY,
    T0,
    TOKYO,
)

from bastion.risk import DEFAULT_RISK_POLICY, LoginAttempt, LoginHistory, PastLogin, RiskPolicy
from bastion.risk.devices import DeviceRecord
from bastion.risk.geo import BundledGeolocator
from bastion.risk.networks import NetworkSet
from bastion.risk.reasons import Contribution, Outcome
from bastion.risk.signals import (
    LOGIN_SIGNALS,
    LoginFacts,
    device_signal,
    geo_signal,
    hours_signal,
    network_signal,
    travel_signal,
    velocity_signal,
)

GEO = BundledGeolocator()
ALICE = "usr_alice"


def attempt(ip: str | None = PARIS, **changes: object) -> LoginAttempt:
    fields: dict[str, object] = {
        "at": T0,
        "ip": ip,
        "location": GEO.locate(ip),
        "user_id": ALICE,
        "roles": ("viewer",),
    }
    fields.update(changes)
    return LoginAttempt(**fields)  # type: ignore[arg-type]


def past(ip: str, hours_ago: float, device_id: str | None = None) -> PastLogin:
    return PastLogin(T0 - timedelta(hours=hours_ago), ip, GEO.locate(ip), device_id)


def facts(
    the_attempt: LoginAttempt | None = None,
    history: LoginHistory | None = None,
    anonymisers: NetworkSet | None = None,
) -> LoginFacts:
    return LoginFacts(
        the_attempt or attempt(), history or LoginHistory(), anonymisers or NetworkSet()
    )


def codes(found: list[Contribution]) -> list[str]:
    return [reason.code for reason in found]


# -- device --------------------------------------------------------------------------------


def device(user_id: str = ALICE, **changes: object) -> DeviceRecord:
    fields: dict[str, object] = {
        "id": "dev_1",
        "user_id": user_id,
        "name": "laptop",
        "created_at": T0 - timedelta(days=3),
        "expires_at": T0 + timedelta(days=27),
    }
    fields.update(changes)
    return DeviceRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("presented", "record", "expected"),
    [
        (True, device(), "device_recognised"),
        (False, None, "device_unknown"),
        (True, None, "device_unknown"),  # malformed or no such credential
        (True, device(user_id="usr_bob"), "device_unknown"),  # another user's
        (True, device(expires_at=T0), "device_unknown"),  # expired at this very instant
        (True, device(revoked_at=T0 - timedelta(hours=1)), "device_revoked"),
    ],
)
def test_device_signal(presented: bool, record: DeviceRecord | None, expected: str) -> None:
    found = device_signal(
        facts(attempt(device_presented=presented), LoginHistory(device=record)),
        DEFAULT_RISK_POLICY,
    )
    assert codes(found) == [expected]


def test_a_recognised_device_has_a_negative_weight_and_a_revoked_one_a_floor() -> None:
    (recognised,) = device_signal(
        facts(attempt(device_presented=True), LoginHistory(device=device())), DEFAULT_RISK_POLICY
    )
    assert recognised.weight < 0
    assert recognised.detail == {"device_id": "dev_1"}
    (revoked,) = device_signal(
        facts(attempt(device_presented=True), LoginHistory(device=device(revoked_at=T0))),
        DEFAULT_RISK_POLICY,
    )
    assert revoked.floor is Outcome.SECOND_FACTOR


# -- network -------------------------------------------------------------------------------

NETWORKS = RiskPolicy.from_document(
    {"networks": {"trusted": [PARIS_OFFICE], "blocked": ["85.214.0.0/16"]}}
)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        (PARIS, ["network_trusted"]),
        (BERLIN, ["network_blocked"]),
        (NEW_YORK, ["network_anonymiser"]),
        (PARIS_HOME, []),
        (LAN, ["network_local"]),
        (None, []),
    ],
)
def test_network_signal(ip: str | None, expected: list[str]) -> None:
    anonymisers = NetworkSet.of(["8.8.8.0/24"])
    assert codes(network_signal(facts(attempt(ip), anonymisers=anonymisers), NETWORKS)) == expected


def test_a_blocked_network_is_denied_whatever_else_it_is() -> None:
    policy = RiskPolicy.from_document(
        {"networks": {"trusted": ["85.214.0.0/24"], "blocked": ["85.214.0.0/16"]}}
    )
    found = network_signal(facts(attempt(BERLIN)), policy)
    assert codes(found) == ["network_blocked", "network_trusted"]
    assert max(reason.floor for reason in found) is Outcome.DENY


def test_address_reputation_from_decayed_failures() -> None:
    policy = DEFAULT_RISK_POLICY
    bad = LoginHistory(address_reputation=policy.reputation_failures)
    assert codes(network_signal(facts(attempt(PARIS_HOME), bad), policy)) == ["address_reputation"]
    fine = LoginHistory(address_reputation=policy.reputation_failures - 0.5)
    assert codes(network_signal(facts(attempt(PARIS_HOME), fine), policy)) == []


# -- geolocation -----------------------------------------------------------------------------


def test_a_new_country_for_a_user_with_history() -> None:
    history = LoginHistory(successes=(past(PARIS, 24), past(PARIS_HOME, 48)))
    (found,) = geo_signal(facts(attempt(BERLIN), history), DEFAULT_RISK_POLICY)
    assert (found.code, found.detail) == ("country_new", {"country": "DE"})
    assert geo_signal(facts(attempt(PARIS_HOME), history), DEFAULT_RISK_POLICY) == []


def test_no_history_or_a_local_address_is_never_a_new_country() -> None:
    assert geo_signal(facts(attempt(BERLIN)), DEFAULT_RISK_POLICY) == []
    history = LoginHistory(successes=(past(PARIS, 24),))
    assert geo_signal(facts(attempt(LAN), history), DEFAULT_RISK_POLICY) == []


def test_country_block_and_allow_lists() -> None:
    blocked = RiskPolicy.from_document({"countries": {"blocked": ["DE"]}})
    (found,) = geo_signal(facts(attempt(BERLIN)), blocked)
    assert (found.code, found.floor) == ("country_blocked", Outcome.DENY)
    allowed = RiskPolicy.from_document({"countries": {"allowed": ["FR"]}})
    assert codes(geo_signal(facts(attempt(BERLIN)), allowed)) == ["country_not_allowed"]
    assert geo_signal(facts(attempt(PARIS)), allowed) == []
    assert geo_signal(facts(attempt(LAN)), allowed) == []  # local: no country to refuse
    # an unplaceable public address fails a non-empty allow list (closed, not open)
    unplaced = attempt("2c0f:ffff::1")
    assert codes(geo_signal(facts(unplaced), allowed)) == ["country_not_allowed"]
    assert codes(geo_signal(facts(unplaced), DEFAULT_RISK_POLICY)) == ["country_unknown"]


# -- travel ----------------------------------------------------------------------------------


def test_paris_then_sydney_one_hour_later_is_impossible_travel() -> None:
    history = LoginHistory(successes=(past(PARIS, 1),))
    (found,) = travel_signal(facts(attempt(SYDNEY), history), DEFAULT_RISK_POLICY)
    assert found.code == "impossible_travel"
    assert found.floor is Outcome.PHISHING_RESISTANT
    assert found.detail["from_country"] == "FR"
    assert found.detail["to_country"] == "AU"
    assert found.detail["hours"] == 1.0
    assert found.detail["kmh"] > 10_000


def test_travel_that_an_airliner_can_do_is_not_flagged() -> None:
    # Paris to Tokyo by country points minus both radii is ~8,600 km: 10 h is fine
    history = LoginHistory(successes=(past(PARIS, 10),))
    assert travel_signal(facts(attempt(TOKYO), history), DEFAULT_RISK_POLICY) == []
    history = LoginHistory(successes=(past(PARIS, 4),))
    assert codes(travel_signal(facts(attempt(TOKYO), history), DEFAULT_RISK_POLICY)) == [
        "impossible_travel"
    ]


def test_only_sign_ins_within_the_lookback_are_travel_origins() -> None:
    # Paris to Sydney in 25 h is ~530 km/h between the country circles: a real flight,
    # flagged only under a slower max speed, and only when 25 h is within the lookback.
    history = LoginHistory(successes=(past(PARIS, 25),))
    assert travel_signal(facts(attempt(SYDNEY), history), DEFAULT_RISK_POLICY) == []
    slow = {"max_speed_kmh": 200}
    short = RiskPolicy.from_document({"travel": {**slow, "lookback_hours": 24}})
    assert travel_signal(facts(attempt(SYDNEY), history), short) == []
    longer = RiskPolicy.from_document({"travel": {**slow, "lookback_hours": 48}})
    assert codes(travel_signal(facts(attempt(SYDNEY), history), longer)) == ["impossible_travel"]


def test_the_max_speed_and_tolerance_are_the_policy_s() -> None:
    history = LoginHistory(successes=(past(PARIS, 10),))
    slow = RiskPolicy.from_document({"travel": {"max_speed_kmh": 500}})
    assert codes(travel_signal(facts(attempt(TOKYO), history), slow)) == ["impossible_travel"]
    tolerant = RiskPolicy.from_document({"travel": {"tolerance_km": 20_000}})
    history = LoginHistory(successes=(past(PARIS, 1),))
    assert travel_signal(facts(attempt(SYDNEY), history), tolerant) == []


def test_travel_from_or_to_a_local_address_is_not_measured() -> None:
    history = LoginHistory(successes=(past(LAN, 0.1),))
    assert travel_signal(facts(attempt(SYDNEY), history), DEFAULT_RISK_POLICY) == []


# -- time of access --------------------------------------------------------------------------

OFFICE_HOURS = RiskPolicy.from_document(
    {
        "hours": {
            "time_zone": "Europe/Paris",
            "roles": {"admin": {"days": ["mon", "tue", "wed", "thu", "fri"],
                                "from": "07:00", "to": "20:00"}},
        }
    }
)  # fmt: skip


def test_outside_the_role_s_hours_asks_for_a_second_factor_whatever_the_score() -> None:
    at_3am = T0.replace(hour=2)  # 03:00 in Paris
    (found,) = hours_signal(facts(attempt(at=at_3am, roles=("admin",))), OFFICE_HOURS)
    assert (found.code, found.floor, found.detail) == (
        "hours_outside_role",
        Outcome.SECOND_FACTOR,
        {"roles": "admin"},
    )
    assert hours_signal(facts(attempt(roles=("admin",))), OFFICE_HOURS) == []  # 10:00 Paris
    assert hours_signal(facts(attempt(at=at_3am, roles=("viewer",))), OFFICE_HOURS) == []


def test_a_star_window_applies_to_every_user() -> None:
    policy = RiskPolicy.from_document({"hours": {"roles": {"*": {"from": "06:00", "to": "22:00"}}}})
    found = hours_signal(facts(attempt(at=T0.replace(hour=23), roles=())), policy)
    assert codes(found) == ["hours_outside_role"]


def test_unusual_hour_needs_enough_history() -> None:
    mornings = tuple(past(PARIS, 24 * day + 0.5) for day in range(1, 11))  # ~08:30 UTC
    night = attempt(at=T0.replace(hour=2))
    (found,) = hours_signal(facts(night, LoginHistory(successes=mornings)), DEFAULT_RISK_POLICY)
    assert (found.code, found.detail) == ("hours_unusual", {"hour": 2, "zone": "UTC"})
    assert (
        hours_signal(facts(attempt(), LoginHistory(successes=mornings)), DEFAULT_RISK_POLICY) == []
    )
    few = LoginHistory(successes=mornings[:9])
    assert hours_signal(facts(night, few), DEFAULT_RISK_POLICY) == []


# -- velocity ----------------------------------------------------------------------------------


def test_failures_of_the_user_spraying_from_the_address_and_a_first_login() -> None:
    policy = DEFAULT_RISK_POLICY
    assert codes(velocity_signal(facts(), policy)) == ["first_login"]
    history = LoginHistory(
        successes=(past(PARIS, 24),),
        user_failures=policy.user_failures,
        address_failures=60,
        address_usernames=policy.spraying_usernames,
    )
    found = velocity_signal(facts(attempt(), history), policy)
    assert codes(found) == ["user_failures", "address_spraying"]
    assert found[1].detail == {"usernames": 10, "failures": 60, "window_s": 3600}
    quiet = LoginHistory(
        successes=(past(PARIS, 24),),
        user_failures=policy.user_failures - 1,
        address_usernames=policy.spraying_usernames - 1,
    )
    assert velocity_signal(facts(attempt(), quiet), policy) == []


def test_an_unknown_username_is_not_a_first_login() -> None:
    assert velocity_signal(facts(attempt(user_id=None)), DEFAULT_RISK_POLICY) == []


def test_signals_are_pure_the_same_facts_give_the_same_reasons() -> None:
    history = LoginHistory(successes=(past(PARIS, 1),), user_failures=7, address_usernames=30)
    the_facts = facts(attempt(SYDNEY, device_presented=True), history)
    first = [signal(the_facts, DEFAULT_RISK_POLICY) for signal in LOGIN_SIGNALS]
    again = [signal(the_facts, DEFAULT_RISK_POLICY) for signal in LOGIN_SIGNALS]
    assert first == again
