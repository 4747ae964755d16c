"""docs/risk.md stays true: the generated reference, every key, and the worked examples."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from tests.support.risk import (
    BERLIN,
    ENGINE,
    PARIS,
    SAO_PAULO,
    SYDNEY,
    T0,
    Harness,
    db,
    make_user,
    office_policy,
)

from bastion.risk import DEFAULT_RISK_POLICY, REASONS, RiskDecision, SessionWatch, VolumeMeter
from bastion.risk.reference import BEGIN, END, render_reference
from bastion.storage import Database

__all__ = ["db"]

DOC = (Path(__file__).resolve().parents[2] / "docs" / "risk.md").read_text()
ADMIN_HOURS = {
    "time_zone": "Europe/Paris",
    "roles": {"admin": {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "07:00",
                        "to": "20:00"}},
}  # fmt: skip


def test_the_generated_reference_is_current() -> None:
    start, end = DOC.index(BEGIN), DOC.index(END) + len(END)
    assert DOC[start:end] == render_reference(), (
        "regenerate: python -c 'import bastion.risk.reference as r; print(r.render_reference())'"
    )


def test_every_reason_and_every_policy_key_is_explained_in_the_text() -> None:
    prose = DOC[: DOC.index(BEGIN)]
    for code in REASONS:
        assert f"`{code}`" in prose, code
    for section, value in DEFAULT_RISK_POLICY.to_document().items():
        if section == "reasons" or not isinstance(value, dict):
            continue
        for key in value:
            assert f"{section}.{key}" in prose or f"`{section}`" in prose, f"{section}.{key}"


def said(decision: RiskDecision) -> str:
    return f"score {decision.score} → {decision.outcome.label}"


def test_the_worked_examples_are_what_the_engine_says(db: Database) -> None:
    harness = Harness(db, office_policy(hours=ADMIN_HOURS))
    alice = make_user(db, "alice")
    laptop = harness.remember(alice, at=T0 - timedelta(days=25))
    harness.settle(alice)

    def assess(
        ip: str,
        at: datetime = T0,
        roles: tuple[str, ...] = ("viewer",),
        device: str | None = None,
    ) -> RiskDecision:
        return harness.assess(
            username="alice", user_id=alice, ip=ip, at=at, roles=roles, device=device
        ).decision

    examples = [
        assess(PARIS, device=laptop),
        assess(BERLIN),
        assess(PARIS, T0.replace(hour=2), roles=("admin",), device=laptop),
    ]
    # 5: spraying from São Paulo, then Alice's right password from there
    for n in range(50):
        harness.attempt(
            username=f"user{n}", user_id=None, ip=SAO_PAULO, at=T0 + timedelta(seconds=10 * n),
            outcome="failure",
        )  # fmt: skip
    spraying = assess(SAO_PAULO, T0 + timedelta(minutes=9))
    assert "(49.5 decayed failures)" in DOC
    assert spraying.reasons[1].detail == {"failures": 49.5}
    examples.append(spraying)
    # 3: Paris, then Sydney an hour later
    harness.attempt(username="alice", user_id=alice, ip=PARIS, at=T0, outcome="success")
    later = T0 + timedelta(hours=1)
    travel = assess(SYDNEY, later, device=laptop)
    examples += [travel, assess(SYDNEY, later)]
    assert "16,506 km between the country points, 13,236 km/h" in DOC
    assert travel.reasons[-1].detail["km"] == 16_506
    assert travel.reasons[-1].detail["kmh"] == 13_236
    for decision in examples:
        assert said(decision) in DOC, said(decision)

    # 6: mid-session
    watch = SessionWatch(ENGINE)
    for ip, minutes in ((SYDNEY, 20), (BERLIN, 8 * 60)):
        challenge = watch.check(
            key=f"ses_{ip}", ip=ip, origin_ip=PARIS, origin_at=T0, policy=harness.policy,
            now=T0 + timedelta(minutes=minutes),
        )  # fmt: skip
        assert challenge is not None
        assert said(challenge.decision) in DOC
        assert f'acr_values="{challenge.acr}"' in DOC

    # 7: a scroll burst over a baseline of 2,000
    meter = VolumeMeter()
    meter.set_baselines({("usr_alice", "scroll"): 2_000.0})
    for second in range(40):
        meter.add("usr_alice", "scroll", 1_000, now=T0.replace(second=second),
                  policy=harness.policy)  # fmt: skip
    flag = meter.flag("usr_alice")
    assert flag is not None
    assert flag.limit == 20_000
