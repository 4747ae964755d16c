"""The scenarios of issue 15, evaluated at engine level on a real SQLite store.

Each sign-in goes the way the login will drive it: ``assess_login`` in a read (history in
two queries), then ``record_login_attempt`` in the write that records the outcome. The
clock is explicit (``T0`` is a Tuesday, 10:00 in Paris) and so is every client address.
"""

from __future__ import annotations

from datetime import timedelta

from tests.support.risk import (
    BERLIN,
    ENGINE,
    PARIS,
    PARIS_OFFICE,
    SAO_PAULO,
    SYDNEY,
    T0,
    Harness,
    db,
    make_user,
    office_policy,
)

from bastion.risk import (
    Level,
    Outcome,
    RiskPolicy,
    SessionWatch,
    VolumeMeter,
    allowed_methods,
)
from bastion.risk.store import load_baselines, save_usage
from bastion.storage import Database

__all__ = ["db"]  # the fixture

ENROLLED = ("totp", "webauthn", "recovery_code")


def settled_alice(db: Database, policy: RiskPolicy) -> tuple[Harness, str, str]:
    """Alice: a remembered laptop, 20 weekday mornings at the Paris office."""
    harness = Harness(db, policy)
    alice = make_user(db, "alice")
    laptop = harness.remember(alice, at=T0 - timedelta(days=25))
    harness.settle(alice)
    return harness, alice, laptop


def test_known_device_trusted_network_usual_hour_needs_nothing_beyond_policy(
    db: Database,
) -> None:
    harness, alice, laptop = settled_alice(db, office_policy())
    risk = harness.assess(username="alice", user_id=alice, ip=PARIS, at=T0, device=laptop)
    assert risk.decision.outcome is Outcome.ALLOW
    assert risk.decision.level is Level.LOW
    assert risk.decision.codes == ("device_recognised", "network_trusted")
    assert risk.decision.score == -40
    requirement = risk.requirement
    assert requirement.acr == "aal2"  # the policy's minimum, not less
    assert requirement.remembered_device_counts  # password + this device: aal2, no prompt
    assert not requirement.phishing_resistant
    assert not requirement.deny


def test_same_user_new_device_from_another_country_needs_a_second_factor(db: Database) -> None:
    harness, alice, _ = settled_alice(db, office_policy())
    risk = harness.assess(username="alice", user_id=alice, ip=BERLIN, at=T0)
    assert risk.decision.outcome is Outcome.SECOND_FACTOR
    assert risk.decision.level is Level.MEDIUM
    assert set(risk.decision.codes) == {"device_unknown", "country_new"}
    assert risk.requirement.acr == "aal2"
    assert not risk.requirement.remembered_device_counts
    assert allowed_methods(risk.requirement, ENROLLED) == ENROLLED


def test_paris_then_sydney_an_hour_later_needs_a_phishing_resistant_factor(
    db: Database,
) -> None:
    harness, alice, laptop = settled_alice(db, office_policy())
    harness.attempt(username="alice", user_id=alice, ip=PARIS, at=T0, outcome="success")
    later = T0 + timedelta(hours=1)
    # even with the remembered laptop's credential (a stolen cookie travels fast)
    risk = harness.assess(username="alice", user_id=alice, ip=SYDNEY, at=later, device=laptop)
    assert risk.decision.outcome is Outcome.PHISHING_RESISTANT
    assert risk.decision.level is Level.HIGH
    assert "impossible_travel" in risk.decision.codes
    assert risk.requirement.phishing_resistant
    assert allowed_methods(risk.requirement, ENROLLED) == ("webauthn",)
    assert allowed_methods(risk.requirement, ("totp", "recovery_code")) == ()  # → denied
    # without the device the score passes the deny threshold
    bare = harness.assess(username="alice", user_id=alice, ip=SYDNEY, at=later)
    assert bare.decision.outcome is Outcome.DENY


def test_paris_then_sydney_is_denied_when_the_policy_says_so(db: Database) -> None:
    strict = office_policy(reasons={"impossible_travel": {"floor": "deny"}})
    harness, alice, laptop = settled_alice(db, strict)
    harness.attempt(username="alice", user_id=alice, ip=PARIS, at=T0, outcome="success")
    risk = harness.assess(
        username="alice", user_id=alice, ip=SYDNEY, at=T0 + timedelta(hours=1), device=laptop
    )
    assert risk.decision.outcome is Outcome.DENY
    assert risk.requirement.deny
    assert allowed_methods(risk.requirement, ENROLLED) == ()


def test_a_blocked_network_is_denied_even_from_the_known_device(db: Database) -> None:
    policy = RiskPolicy.from_document(
        {"networks": {"trusted": [PARIS_OFFICE], "blocked": ["90.84.0.0/16"]}}
    )
    harness, alice, laptop = settled_alice(db, policy)
    risk = harness.assess(username="alice", user_id=alice, ip=PARIS, at=T0, device=laptop)
    assert risk.decision.outcome is Outcome.DENY
    assert "network_blocked" in risk.decision.codes
    assert risk.decision.score < policy.thresholds.deny  # the floor denies, not the score
    assert risk.requirement.deny


def test_three_in_the_morning_outside_the_role_s_hours_steps_up(db: Database) -> None:
    policy = office_policy(
        hours={
            "time_zone": "Europe/Paris",
            "roles": {"admin": {"days": ["mon", "tue", "wed", "thu", "fri"],
                                "from": "07:00", "to": "20:00"}},
        }
    )  # fmt: skip
    harness, alice, laptop = settled_alice(db, policy)
    at_3am = T0.replace(hour=2)  # 03:00 in Paris
    risk = harness.assess(
        username="alice", user_id=alice, ip=PARIS, at=at_3am, roles=("admin",), device=laptop
    )
    assert risk.decision.outcome is Outcome.SECOND_FACTOR
    assert {"hours_outside_role", "hours_unusual"} <= set(risk.decision.codes)
    assert not risk.requirement.remembered_device_counts
    # the same minute as a viewer is only unusual, and the device and office outweigh it
    viewer = harness.assess(username="alice", user_id=alice, ip=PARIS, at=at_3am, device=laptop)
    assert viewer.decision.outcome is Outcome.ALLOW


def test_one_address_trying_50_usernames_is_flagged(db: Database) -> None:
    harness, alice, _ = settled_alice(db, office_policy())
    flagged_from = None
    for n in range(50):
        risk = harness.attempt(
            username=f"user{n}",
            user_id=None,
            ip=SAO_PAULO,
            at=T0 + timedelta(seconds=10 * n),
            outcome="failure",
        )
        if flagged_from is None and risk.decision.has("address_spraying"):
            flagged_from = n
    assert flagged_from == 10  # the 11th attempt sees 10 usernames already failed
    # then the right password for a real account from that address
    risk = harness.assess(
        username="alice", user_id=alice, ip=SAO_PAULO, at=T0 + timedelta(minutes=9)
    )
    assert {"address_spraying", "address_reputation"} <= set(risk.decision.codes)
    assert risk.decision.outcome >= Outcome.PHISHING_RESISTANT
    spraying = next(r for r in risk.decision.reasons if r.code == "address_spraying")
    assert spraying.detail["usernames"] == 50
    # an hour later the velocity window has passed; the decaying reputation has not
    later = harness.assess(
        username="alice", user_id=alice, ip=SAO_PAULO, at=T0 + timedelta(hours=2)
    )
    assert not later.decision.has("address_spraying")
    assert later.decision.has("address_reputation")


def test_mid_session_the_same_token_from_far_away_steps_up() -> None:
    watch = SessionWatch(ENGINE)
    policy = office_policy()
    common = {"key": "ses_1", "origin_ip": PARIS, "origin_at": T0, "policy": policy}
    assert watch.check(ip=PARIS, now=T0 + timedelta(minutes=1), **common) is None
    challenge = watch.check(ip=SYDNEY, now=T0 + timedelta(minutes=20), **common)
    assert challenge is not None
    assert not challenge.deny
    assert challenge.acr == "aal3"  # impossible travel: a phishing-resistant step-up
    assert challenge.decision.codes == ("session_address_changed", "impossible_travel")
    assert challenge.decision.outcome is Outcome.PHISHING_RESISTANT


def test_a_scroll_burst_20_times_the_baseline_steps_up(db: Database) -> None:
    policy = office_policy()
    # two weeks of normal work: 2,000 scrolled points in the busiest minute of each hour
    history = {
        ("usr_alice", "scroll", (T0 - timedelta(hours=h)).replace(minute=0)): [20_000, 2_000]
        for h in range(1, 24 * 14, 7)
    }
    with db.begin() as conn:
        save_usage(conn, history)
    meter = VolumeMeter()
    with db.read() as conn:
        meter.set_baselines(
            load_baselines(conn, principal_ids=["usr_alice"], now=T0, policy=policy)
        )
    session = {"acr": "aal2", "auth_time": T0 - timedelta(hours=1), "policy": policy}
    now = T0.replace(second=5)
    meter.add("usr_alice", "scroll", 2_000, now=now, policy=policy)  # a normal minute
    assert meter.check("usr_alice", now=now, **session) is None
    for second in range(6, 46):  # 40 pages of 1,000 points in 40 seconds: 20x the baseline
        meter.add("usr_alice", "scroll", 1_000, now=T0.replace(second=second), policy=policy)
    challenge = meter.check("usr_alice", now=T0.replace(second=46), **session)
    assert challenge is not None
    assert challenge.acr == "aal2"
    (reason,) = challenge.decision.reasons
    assert reason.code == "volume_scroll_burst"
    assert reason.detail["baseline"] == 2_000
    assert reason.detail["limit"] == 10 * 2_000  # burst_multiplier x the baseline
    assert reason.detail["points_per_minute"] > reason.detail["limit"]  # when it was raised
