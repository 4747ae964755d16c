"""Continuous evaluation of sessions: address changes, travel between uses, lists, memory."""

from __future__ import annotations

from datetime import timedelta

from tests.support.risk import (
    BERLIN,
    ENGINE,
    LAN,
    PARIS,
    PARIS_HOME,
    PARIS_OFFICE,
    SYDNEY,
    T0,
    TOKYO,
    office_policy,
)

from bastion.risk import Challenge, Outcome, RiskDecision, RiskPolicy, SessionWatch

POLICY = office_policy()


def check(
    watch: SessionWatch,
    ip: str | None,
    minutes: float,
    *,
    key: str = "ses_1",
    origin: str | None = PARIS,
    policy: RiskPolicy = POLICY,
) -> Challenge | None:
    return watch.check(
        key=key, ip=ip, origin_ip=origin, origin_at=T0, policy=policy,
        now=T0 + timedelta(minutes=minutes),
    )  # fmt: skip


def test_the_sign_in_address_needs_nothing() -> None:
    watch = SessionWatch(ENGINE)
    assert check(watch, PARIS, 1) is None
    assert check(watch, PARIS, 2) is None


def test_another_network_in_the_same_country_is_only_noted() -> None:
    watch = SessionWatch(ENGINE)
    assert check(watch, PARIS_HOME, 5) is None


def test_another_country_after_a_possible_journey_asks_for_a_second_factor() -> None:
    watch = SessionWatch(ENGINE)
    challenge = check(watch, BERLIN, 8 * 60)
    assert challenge is not None
    assert challenge.decision.codes == ("session_address_changed", "session_country_changed")
    assert (challenge.acr, challenge.deny) == ("aal2", False)
    assert challenge.since == T0 + timedelta(hours=8)


def test_travel_is_measured_from_the_previous_use_not_only_from_the_sign_in() -> None:
    watch = SessionWatch(ENGINE)
    assert check(watch, TOKYO, 20 * 60, origin=TOKYO) is None  # signed in from Tokyo
    # used from Tokyo 20 h after sign-in; Sydney one hour after that use is too fast
    challenge = check(watch, SYDNEY, 21 * 60, origin=TOKYO)
    assert challenge is not None
    assert "impossible_travel" in challenge.decision.codes


def test_a_challenge_is_repeated_for_every_request_from_that_address() -> None:
    decisions: list[tuple[str, RiskDecision]] = []
    watch = SessionWatch(ENGINE, on_decision=lambda key, d: decisions.append((key, d)))
    first = check(watch, SYDNEY, 10)
    assert first is not None
    assert check(watch, SYDNEY, 11) is first
    assert check(watch, SYDNEY, 12) is first
    assert len(decisions) == 1  # audited once, when it was decided
    assert decisions[0][0] == "ses_1"


def test_a_new_policy_object_is_evaluated_afresh() -> None:
    watch = SessionWatch(ENGINE)
    assert check(watch, PARIS, 1) is None
    blocked = RiskPolicy.from_document(
        {"networks": {"trusted": [PARIS_OFFICE], "blocked": ["90.84.0.0/16"]}}
    )
    challenge = check(watch, PARIS, 2, policy=blocked)
    assert challenge is not None
    assert challenge.deny
    assert challenge.decision.outcome is Outcome.DENY
    assert not challenge.satisfied_by(acr="aal3", auth_time=T0 + timedelta(days=1))


def test_a_local_address_or_none_is_not_an_error() -> None:
    watch = SessionWatch(ENGINE)
    assert check(watch, LAN, 1, origin=LAN) is None
    assert check(watch, None, 2, key="ses_2", origin=None) is None


def test_sessions_are_watched_apart_and_memory_is_bounded() -> None:
    watch = SessionWatch(ENGINE, max_entries=3)
    for n in range(10):
        assert check(watch, PARIS, 1, key=f"ses_{n}") is None
    assert len(watch._seen) <= 3
    watch.forget("ses_9")
    assert "ses_9" not in watch._seen


def test_a_step_up_after_the_challenge_satisfies_it_with_the_acr_asked() -> None:
    watch = SessionWatch(ENGINE)
    challenge = check(watch, BERLIN, 8 * 60)
    assert challenge is not None
    later = challenge.since + timedelta(seconds=1)
    assert challenge.satisfied_by(acr="aal2", auth_time=later)
    assert challenge.satisfied_by(acr="aal3", auth_time=later)
    assert not challenge.satisfied_by(acr="aal1", auth_time=later)
    assert not challenge.satisfied_by(acr="aal2", auth_time=T0)  # the old sign-in
    assert not challenge.satisfied_by(acr="aal2", auth_time=None)  # cannot step up (API key)
    assert not challenge.satisfied_by(acr="AAL2", auth_time=later)
