"""The risk policy document: documented defaults, strict validation naming the key."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bastion.errors import ValidationError
from bastion.risk import DEFAULT_RISK_POLICY, REASONS, Outcome, RiskPolicy, load_risk_policy


def test_an_empty_document_is_the_default_policy() -> None:
    assert RiskPolicy.from_document({}).to_document() == DEFAULT_RISK_POLICY.to_document()


def test_the_full_document_round_trips_through_json() -> None:
    document = RiskPolicy.from_document(
        {
            "networks": {"trusted": ["90.84.12.0/24"], "blocked": ["203.0.113.0/24"]},
            "countries": {"allowed": ["FR", "DE"], "blocked": ["KP"]},
            "hours": {
                "time_zone": "Europe/Paris",
                "roles": {"admin": {"days": ["mon", "fri"], "from": "07:00", "to": "20:00"}},
            },
            "reasons": {"impossible_travel": {"floor": "deny"}},
        }
    ).to_document()
    again = RiskPolicy.from_document(json.loads(json.dumps(document)))
    assert again.to_document() == document
    assert document["hours"]["roles"]["admin"] == {
        "days": ["mon", "fri"],
        "from": "07:00",
        "to": "20:00",
        "time_zone": "Europe/Paris",
    }


def test_every_registered_reason_is_in_the_document_with_its_default() -> None:
    reasons = DEFAULT_RISK_POLICY.to_document()["reasons"]
    assert set(reasons) == set(REASONS)
    for code, spec in REASONS.items():
        assert reasons[code] == {"weight": spec.weight, "floor": spec.floor.label}


def test_a_reason_override_changes_only_what_it_names() -> None:
    policy = RiskPolicy.from_document(
        {"reasons": {"country_new": {"weight": 45}, "impossible_travel": {"floor": "deny"}}}
    )
    assert policy.reason("country_new") == (45, Outcome.ALLOW)
    assert policy.reason("impossible_travel") == (70, Outcome.DENY)
    assert policy.reason("device_unknown") == DEFAULT_RISK_POLICY.reason("device_unknown")


def _with(path: str, value: Any) -> dict[str, Any]:
    document: dict[str, Any] = {}
    node = document
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "risk must be an object"),
        ({"thresholds": {"second_factor": 30}, "weights": {}}, "Unknown keys in risk: weights"),
        (_with("travel.max_speed", 900), "Unknown keys in risk.travel: max_speed"),
        (_with("travel.max_speed_kmh", "fast"), "risk.travel.max_speed_kmh must be a number"),
        (_with("travel.max_speed_kmh", True), "risk.travel.max_speed_kmh must be a number"),
        (_with("travel.max_speed_kmh", 0), "risk.travel.max_speed_kmh must be a number from 1"),
        (_with("travel.lookback_hours", 1.5), "risk.travel.lookback_hours must be a whole"),
        (_with("velocity.spraying_usernames", 1), "risk.velocity.spraying_usernames"),
        (_with("devices.ttl_days", 400), "risk.devices.ttl_days must be a whole number from 1"),
        (_with("thresholds", {"second_factor": 60, "phishing_resistant": 60}), "must increase"),
        (_with("thresholds.deny", 10), "must increase"),
        (_with("reasons.gut_feeling", {"weight": 5}), "Unknown reason codes in risk.reasons"),
        (_with("reasons.country_new", {"weight": 5, "note": "x"}), "risk.reasons.country_new"),
        (_with("reasons.country_new.weight", "5"), "risk.reasons.country_new.weight"),
        (_with("reasons.country_new.weight", 5000), "risk.reasons.country_new.weight"),
        (_with("reasons.country_new.floor", "maybe"), "risk.reasons.country_new.floor"),
        (_with("reasons.country_new", 5), "risk.reasons.country_new must be an object"),
        (_with("networks.trusted", "10.0.0.0/8"), "risk.networks.trusted must be a list"),
        (_with("networks.trusted", ["10.0.0.1/8"]), "risk.networks.trusted: '10.0.0.1/8'"),
        (_with("networks.blocked", ["example.org"]), "risk.networks.blocked"),
        (_with("networks.blocked", ["1.1.1.1"] * 1001), "at most 1000"),
        (_with("countries.allowed", ["fr"]), "risk.countries.allowed: not ISO 3166-1"),
        (_with("countries.blocked", ["EU"]), "risk.countries.blocked: not ISO 3166-1"),
        (_with("hours.time_zone", "Mars/Olympus"), "risk.hours.time_zone must be an IANA"),
        (_with("hours.time_zone", "../../etc/passwd"), "risk.hours.time_zone must be an IANA"),
        (_with("hours.roles.admin", {"from": "07:00"}), "risk.hours.roles.admin.from and .to"),
        (_with("hours.roles.admin", {"from": "07:00", "to": "07:00"}), "an empty window"),
        (_with("hours.roles.admin", {"from": "7", "to": "9"}), "risk.hours.roles.admin.from"),
        (_with("hours.roles.admin", {"from": "07:00", "to": "09:00", "days": ["monday"]}),
         "risk.hours.roles.admin.days"),
        (_with("hours.roles.admin", {"from": "07:00", "to": "09:00", "days": []}),
         "risk.hours.roles.admin.days"),
        (_with("hours.roles.admin", {"from": "07:00", "to": "09:00", "tz": "UTC"}),
         "Unknown keys in risk.hours.roles.admin: tz"),
        (_with("hours.roles.admin", {"from": "07:00", "to": "09:00", "time_zone": "Nowhere"}),
         "risk.hours.roles.admin.time_zone"),
        (_with("hours.roles", {"": {"from": "07:00", "to": "09:00"}}), "role names"),
        (_with("hours.roles", {"Admin\n": {"from": "07:00", "to": "09:00"}}), "role names"),
        (_with("hours.roles", {"a" * 65: {"from": "07:00", "to": "09:00"}}), "role names"),
        (_with("volume.floors.download", 5), "Unknown keys in risk.volume.floors: download"),
        (_with("volume.floors.scroll", 0), "risk.volume.floors.scroll"),
        (_with("volume.burst_multiplier", 1), "risk.volume.burst_multiplier"),
    ],
)  # fmt: skip
def test_bad_documents_are_refused_with_the_key_named(document: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace(".", r"\.").replace("(", r"\(")):
        RiskPolicy.from_document(document)


def test_validation_does_not_change_the_document_it_read() -> None:
    document = {"hours": {"roles": {"admin": {"from": "07:00", "to": "20:00"}}}}
    before = copy.deepcopy(document)
    RiskPolicy.from_document(document)
    assert document == before


def test_a_role_window_without_a_zone_takes_the_policy_zone_and_every_day() -> None:
    policy = RiskPolicy.from_document(
        {"hours": {"time_zone": "Asia/Tokyo", "roles": {"*": {"from": "22:00", "to": "06:00"}}}}
    )
    window = policy.role_hours["*"]
    assert (window.time_zone, window.days) == ("Asia/Tokyo", frozenset(range(7)))
    assert window.describe() == "mon,tue,wed,thu,fri,sat,sun 22:00-06:00 Asia/Tokyo"


def test_thresholds_map_scores_to_outcomes() -> None:
    thresholds = DEFAULT_RISK_POLICY.thresholds
    assert [thresholds.outcome(s) for s in (-50, 29, 30, 59, 60, 89, 90, 500)] == [
        Outcome.ALLOW,
        Outcome.ALLOW,
        Outcome.SECOND_FACTOR,
        Outcome.SECOND_FACTOR,
        Outcome.PHISHING_RESISTANT,
        Outcome.PHISHING_RESISTANT,
        Outcome.DENY,
        Outcome.DENY,
    ]


def test_load_risk_policy_gives_the_same_object_for_the_same_document() -> None:
    first = load_risk_policy({"travel": {"max_speed_kmh": 900}, "countries": {"blocked": ["KP"]}})
    again = load_risk_policy({"countries": {"blocked": ["KP"]}, "travel": {"max_speed_kmh": 900}})
    assert again is first
    assert load_risk_policy({"travel": {"max_speed_kmh": 901}}) is not first
    assert first.max_speed_kmh == 900
    with pytest.raises(ValidationError, match=r"risk\.travel\.max_speed_kmh"):
        load_risk_policy({"travel": {"max_speed_kmh": "fast"}})
    with pytest.raises(ValidationError, match="must be a number"):
        load_risk_policy({"travel": {"max_speed_kmh": float("nan")}})
