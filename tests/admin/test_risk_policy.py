"""The ``risk`` section of ``GET|PUT /admin/policy`` (issue 15, docs/risk.md)."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.risk import DEFAULT_RISK_POLICY
from tests.admin.helpers import events, mint, problem
from tests.support.app import Env


def put(env: Env, auth: dict[str, str], risk: Any) -> Any:
    return env.client.put("/admin/policy", headers=auth, json={"risk": risk})


def test_the_risk_section_shows_the_documented_defaults(env: Env) -> None:
    admin = mint(env)
    shown = env.client.get("/admin/policy", headers=admin.auth).json()
    assert shown["risk"] == DEFAULT_RISK_POLICY.to_document()


def test_a_risk_setting_is_saved_shown_and_audited_by_name(env: Env) -> None:
    admin = mint(env)
    saved = put(
        env,
        admin.auth,
        {"networks": {"blocked": ["81.2.69.0/24"]}, "thresholds": {"deny": 120}},
    )
    assert saved.status_code == 200, saved.text
    risk = env.client.get("/admin/policy", headers=admin.auth).json()["risk"]
    assert risk["networks"]["blocked"] == ["81.2.69.0/24"]
    assert risk["thresholds"] == {"second_factor": 30, "phishing_resistant": 60, "deny": 120}
    assert risk["travel"] == DEFAULT_RISK_POLICY.to_document()["travel"]
    (event,) = events(env, admin, action="policy.updated")
    changed = {c["field"]: (c["before"], c["after"]) for c in event["details"]["changes"]}
    assert changed == {
        "risk.networks.blocked": (None, ["81.2.69.0/24"]),
        "risk.thresholds.deny": (None, 120),
    }
    # the whole document as GET shows it comes back unchanged (the console saves it so)
    document = env.client.get("/admin/policy", headers=admin.auth).json()
    again = env.client.put("/admin/policy", headers=admin.auth, json=document)
    assert again.status_code == 200, again.text
    assert again.json() == document


@pytest.mark.parametrize(
    ("risk", "names"),
    [
        ({"travel": {"max_speed_kmh": -5}}, "risk.travel.max_speed_kmh"),
        ({"thresholds": {"second_factor": 80, "phishing_resistant": 60}}, "risk.thresholds"),
        ({"networks": {"trusted": ["10.0.0.1/8"]}}, "risk.networks.trusted"),
        ({"countries": {"blocked": ["XX"]}}, "XX"),
        ({"reasons": {"no_such_reason": {"weight": 1}}}, "no_such_reason"),
        ({"hours": {"time_zone": "Mars/Olympus"}}, "risk.hours.time_zone"),
        ({"velocity": {"spraying": 3}}, "risk.velocity"),
        ("high", "risk"),
    ],
)
def test_a_bad_risk_setting_is_a_clear_4xx_naming_it(env: Env, risk: Any, names: str) -> None:
    admin = mint(env)
    body = problem(put(env, admin.auth, risk), 422, "validation_error")
    assert names in body["detail"]
    assert env.client.get("/admin/policy", headers=admin.auth).json()["risk"] == (
        DEFAULT_RISK_POLICY.to_document()
    )
