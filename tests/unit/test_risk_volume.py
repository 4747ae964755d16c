"""The data-plane volume meter: O(1) counters, sliding minute, flags, drain to hourly rows."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.support.risk import T0

from bastion.risk import DEFAULT_RISK_POLICY, VolumeMeter

POLICY = DEFAULT_RISK_POLICY  # floors 1,000 points/min, multiplier 10
USER = {"acr": "aal2", "auth_time": T0 - timedelta(hours=1), "policy": POLICY}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_without_a_baseline_the_policy_floor_sets_the_limit() -> None:
    meter = VolumeMeter()
    meter.add("usr_a", "query", 9_999, now=at(1), policy=POLICY)
    assert meter.check("usr_a", now=at(2), **USER) is None
    meter.add("usr_a", "query", 2, now=at(3), policy=POLICY)
    challenge = meter.check("usr_a", now=at(4), **USER)
    assert challenge is not None
    assert challenge.decision.codes == ("volume_query_burst",)
    assert challenge.decision.reasons[0].detail["limit"] == 10_000


def test_the_baseline_raises_the_limit_above_the_floor() -> None:
    meter = VolumeMeter()
    meter.set_baselines({("usr_a", "export"): 5_000.0})
    meter.add("usr_a", "export", 49_000, now=at(1), policy=POLICY)
    assert meter.flag("usr_a") is None
    meter.add("usr_a", "export", 2_000, now=at(2), policy=POLICY)
    flag = meter.flag("usr_a")
    assert flag is not None
    assert (flag.kind, flag.limit, flag.baseline) == ("export", 50_000, 5_000)


def test_the_sliding_minute_counts_the_unexpired_share_of_the_last_one() -> None:
    meter = VolumeMeter()
    meter.add("usr_a", "scroll", 8_000, now=at(50), policy=POLICY)  # minute 0
    meter.add("usr_a", "scroll", 6_000, now=at(75), policy=POLICY)  # 15 s into minute 1
    assert meter.flag("usr_a") is not None  # 6,000 + 8,000 x 45/60 = 12,000 > 10,000
    other = VolumeMeter()
    other.add("usr_a", "scroll", 8_000, now=at(50), policy=POLICY)
    other.add("usr_a", "scroll", 6_000, now=at(115), policy=POLICY)  # 55 s in: 6,667
    assert other.flag("usr_a") is None


def test_principals_and_kinds_count_apart() -> None:
    meter = VolumeMeter()
    for kind in ("query", "scroll", "export"):
        meter.add("usr_a", kind, 9_000, now=at(1), policy=POLICY)
    meter.add("usr_b", "query", 9_000, now=at(1), policy=POLICY)
    assert meter.flag("usr_a") is None
    assert meter.flag("usr_b") is None


def test_a_step_up_after_the_burst_meets_it_an_api_key_never_does() -> None:
    meter = VolumeMeter()
    meter.add("usr_a", "scroll", 20_000, now=at(1), policy=POLICY)
    stepped_up = {**USER, "auth_time": at(5)}
    assert meter.check("usr_a", now=at(6), **stepped_up) is None
    assert meter.check("usr_a", now=at(6), **USER) is not None
    api_key = {**USER, "acr": "aal1", "auth_time": None}
    assert meter.check("usr_a", now=at(6), **api_key) is not None


def test_the_flag_clears_when_the_rate_falls_or_after_quiet_minutes() -> None:
    meter = VolumeMeter()
    meter.add("usr_a", "scroll", 20_000, now=at(1), policy=POLICY)
    meter.add("usr_a", "scroll", 10, now=at(150), policy=POLICY)  # two minutes on, slow
    assert meter.flag("usr_a") is None
    quiet = VolumeMeter()
    quiet.add("usr_a", "scroll", 20_000, now=at(1), policy=POLICY)
    assert quiet.check("usr_a", now=at(100), **USER) is not None
    quiet.drain(now=at(200))
    assert quiet.check("usr_a", now=at(200), **USER) is None
    assert quiet.flag("usr_a") is None


def test_drain_gives_hourly_totals_and_the_busiest_minute_once() -> None:
    meter = VolumeMeter()
    meter.add("usr_a", "query", 300, now=at(10), policy=POLICY)
    meter.add("usr_a", "query", 200, now=at(20), policy=POLICY)
    meter.add("usr_a", "query", 900, now=at(70), policy=POLICY)
    meter.add("usr_a", "query", 100, now=at(130), policy=POLICY)
    hour = T0.replace(minute=0, second=0)
    assert meter.drain(now=at(140)) == {("usr_a", "query", hour): [1_400, 900]}
    assert meter.drain(now=at(150)) == {}  # nothing finished twice
    assert meter.drain(now=at(200)) == {("usr_a", "query", hour): [100, 100]}
    assert meter.principals() == {"usr_a"}  # minute 2 is still "the last minute"
    assert meter.drain(now=at(260)) == {}
    assert meter.principals() == set()  # idle slots forgotten


def test_memory_is_bounded() -> None:
    meter = VolumeMeter(max_keys=100)
    for n in range(1_000):
        meter.add(f"usr_{n}", "query", 1, now=at(1), policy=POLICY)
    assert len(meter.principals()) <= 100
