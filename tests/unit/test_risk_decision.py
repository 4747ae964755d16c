"""From reasons to a decision, to a login's requirement, and to its audit details."""

from __future__ import annotations

import pytest

from bastion.audit import AuditEvent
from bastion.risk import (
    DEFAULT_RISK_POLICY,
    Level,
    LoginRequirement,
    Outcome,
    RiskDecision,
    allowed_methods,
    decide,
    login_requirement,
)
from bastion.risk.geo import UNKNOWN
from bastion.risk.reasons import REASONS, Contribution, Signal
from bastion.risk.signals import contribution

POLICY = DEFAULT_RISK_POLICY


def decision_of(*codes: str, device: str | None = None) -> RiskDecision:
    reasons = [contribution(POLICY, code) for code in codes]
    return decide(reasons, POLICY.thresholds, context="login", location=UNKNOWN, device_id=device)


def test_the_score_is_the_sum_of_the_weights_and_floors_cannot_be_outweighed() -> None:
    allowed = decision_of("device_recognised", "network_trusted")
    assert (allowed.score, allowed.outcome, allowed.level) == (-40, Outcome.ALLOW, Level.LOW)
    blocked = decision_of("device_recognised", "network_trusted", "network_blocked")
    assert (blocked.score, blocked.outcome) == (-40, Outcome.DENY)


@pytest.mark.parametrize(
    ("codes", "minimum", "expected"),
    [
        ((), "aal1", LoginRequirement(False, "aal1", False, False, True)),
        ((), "aal2", LoginRequirement(False, "aal2", False, False, True)),
        (("device_recognised",), "aal2", LoginRequirement(False, "aal2", False, True, True)),
        (("device_unknown", "country_new"), "aal1",
         LoginRequirement(False, "aal2", False, False, False)),
        (("impossible_travel", "device_recognised"), "aal2",
         LoginRequirement(False, "aal2", True, False, False)),
        (("network_blocked",), "aal2", LoginRequirement(True, "aal3", True, False, False)),
        ((), "aal3", LoginRequirement(False, "aal3", False, False, True)),
    ],
)  # fmt: skip
def test_login_requirement(
    codes: tuple[str, ...], minimum: str, expected: LoginRequirement
) -> None:
    device = "dev_1" if "device_recognised" in codes else None
    assert login_requirement(minimum_acr=minimum, decision=decision_of(*codes, device=device)) == (
        expected
    )


def test_allowed_methods_keep_the_user_s_order_and_filter_phishable_ones() -> None:
    enrolled = ("totp", "sms", "webauthn", "recovery_code")
    second = login_requirement(
        minimum_acr="aal2", decision=decision_of("country_new", "first_login")
    )
    assert allowed_methods(second, enrolled) == enrolled
    strong = login_requirement(minimum_acr="aal2", decision=decision_of("impossible_travel"))
    assert allowed_methods(strong, enrolled) == ("webauthn",)
    assert allowed_methods(strong, ("totp", "unknown-method")) == ()


def test_audit_details_carry_level_score_and_every_reason_and_pass_the_audit_checks() -> None:
    reasons = [
        contribution(POLICY, "device_recognised", device_id="dev_1"),
        contribution(POLICY, "impossible_travel", from_country="FR", to_country="AU",
                     km=16505, hours=1.0, kmh=13235),
    ]  # fmt: skip
    decision = decide(reasons, POLICY.thresholds, context="login", location=UNKNOWN)
    details = decision.audit_details()
    assert details == {
        "risk_level": "high",
        "risk_score": 50,
        "risk_reasons": [
            {"reason": "device_recognised", "weight": -20, "device_id": "dev_1"},
            {"reason": "impossible_travel", "weight": 70, "from_country": "FR",
             "to_country": "AU", "km": 16505, "hours": 1.0, "kmh": 13235},
        ],
    }  # fmt: skip
    # the audit log's own checks (registered keys, no secret-looking key or value) accept it
    for action, outcome in (("login.failure", "denied"), ("login.mfa_required", "challenge")):
        AuditEvent(
            action=action, outcome=outcome, actor="usr_1", tenant_id="tnt_1", details=details
        )


def test_every_detail_key_a_signal_can_emit_is_accepted_by_the_audit_log() -> None:
    keys = ["device_id", "presented", "failures", "country", "from_country", "to_country", "km",
            "hours", "kmh", "roles", "hour", "zone", "usernames", "window_s",
            "points_per_minute", "baseline", "limit"]  # fmt: skip
    reason = Contribution("country_new", 1, Outcome.ALLOW, dict.fromkeys(keys, 1))
    decision = decide([reason], POLICY.thresholds, context="login", location=UNKNOWN)
    AuditEvent(
        action="login.success",
        outcome="success",
        actor="usr_1",
        tenant_id="tnt_1",
        details=decision.audit_details(),
    )


def test_the_registry_is_complete_and_documented() -> None:
    for code, spec in REASONS.items():
        assert spec.code == code
        assert spec.description.endswith(".")
        assert isinstance(spec.signal, Signal)
        assert -100 <= spec.weight <= 100
    assert {o.level for o in Outcome} == set(Level)
    assert [o.step_up_acr for o in Outcome] == [None, "aal2", "aal3", None]
    with pytest.raises(KeyError):
        Outcome.from_label("ALLOW")


def test_password_and_a_remembered_device_compute_to_aal2_without_a_prompt() -> None:
    """What the login integration relies on (authn.assurance is not changed for it): the
    remembered device is a possession factor, so with the password it is two categories."""
    from bastion.authn.assurance import VerifiedFactor, compute_assurance
    from bastion.factors.catalog import CATALOG, Method

    assurance = compute_assurance(
        [
            VerifiedFactor(Method.PASSWORD, CATALOG[Method.PASSWORD].amr),
            VerifiedFactor(Method.REMEMBERED_DEVICE, CATALOG[Method.REMEMBERED_DEVICE].amr),
        ]
    )
    assert assurance.acr == "aal2"
    assert "mfa" in assurance.amr
