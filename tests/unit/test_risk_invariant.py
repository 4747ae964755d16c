"""Property tests: low risk never lowers the requirement below the policy's minimum.

Hypothesis draws any policy (thresholds, every reason's weight and floor), any set of
reasons found, and any minimum the tenant's policy sets; the requirement a login gets is
never below that minimum, a denial is never softened, and raising the risk never
lowers the requirement.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.risk import (
    REASONS,
    Outcome,
    RiskPolicy,
    allowed_methods,
    decide,
    login_requirement,
)
from bastion.risk.decision import ACR_ORDER
from bastion.risk.geo import UNKNOWN
from bastion.risk.signals import contribution

OUTCOMES = [outcome.label for outcome in Outcome]
CODES = sorted(REASONS)
METHODS = ["totp", "webauthn", "recovery_code", "sms", "push", "email"]


@st.composite
def policies(draw: st.DrawFn) -> RiskPolicy:
    low = draw(st.integers(-1000, 997))
    mid = draw(st.integers(low + 1, 998))
    high = draw(st.integers(mid + 1, 999))
    overrides = draw(
        st.dictionaries(
            st.sampled_from(CODES),
            st.fixed_dictionaries(
                {"weight": st.integers(-1000, 1000), "floor": st.sampled_from(OUTCOMES)}
            ),
        )
    )
    return RiskPolicy.from_document(
        {
            "thresholds": {"second_factor": low, "phishing_resistant": mid, "deny": high},
            "reasons": overrides,
        }
    )


def _rank(acr: str) -> int:
    return ACR_ORDER.index(acr)


@settings(max_examples=300, deadline=None)
@given(
    policy=policies(),
    codes=st.lists(st.sampled_from(CODES), max_size=12),
    minimum=st.sampled_from(ACR_ORDER),
    device=st.one_of(st.none(), st.just("dev_1")),
)
def test_the_requirement_is_never_below_the_policy_minimum(
    policy: RiskPolicy, codes: list[str], minimum: str, device: str | None
) -> None:
    reasons = [contribution(policy, code) for code in codes]
    decision = decide(
        reasons, policy.thresholds, context="login", location=UNKNOWN, device_id=device
    )
    requirement = login_requirement(minimum_acr=minimum, decision=decision)
    assert _rank(requirement.acr) >= _rank(minimum)
    # a floor is never outweighed, whatever the other weights
    assert decision.outcome >= max((r.floor for r in reasons), default=Outcome.ALLOW)
    if decision.outcome is Outcome.DENY:
        assert requirement.deny
        assert allowed_methods(requirement, METHODS) == ()
    if decision.outcome >= Outcome.SECOND_FACTOR:
        assert _rank(requirement.acr) >= _rank("aal2")
        assert not requirement.remembered_device_counts
        assert not requirement.enrollment_allowed
    if requirement.phishing_resistant and not requirement.deny:
        assert allowed_methods(requirement, METHODS) == ("webauthn",)


@settings(max_examples=300, deadline=None)
@given(
    policy=policies(),
    codes=st.lists(st.sampled_from(CODES), max_size=10),
    extra=st.sampled_from(CODES),
    minimum=st.sampled_from(ACR_ORDER),
)
def test_a_reason_with_a_positive_weight_never_lowers_the_requirement(
    policy: RiskPolicy, codes: list[str], extra: str, minimum: str
) -> None:
    reasons = [contribution(policy, code) for code in codes]
    more = [*reasons, contribution(policy, extra)]
    before = decide(reasons, policy.thresholds, context="login", location=UNKNOWN)
    after = decide(more, policy.thresholds, context="login", location=UNKNOWN)
    if policy.reason(extra)[0] >= 0:
        assert after.outcome >= before.outcome
        assert _rank(login_requirement(minimum_acr=minimum, decision=after).acr) >= _rank(
            login_requirement(minimum_acr=minimum, decision=before).acr
        )


def test_an_unknown_minimum_is_refused_rather_than_read_as_low() -> None:
    import pytest

    decision = decide([], RiskPolicy().thresholds, context="login", location=UNKNOWN)
    with pytest.raises(ValueError, match="unknown acr"):
        login_requirement(minimum_acr="AAL2", decision=decision)
