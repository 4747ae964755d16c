"""Data-plane volume against each principal's own baseline: query, scroll, export.

The request path does O(1) work in memory. ``add`` (after a response, with the number of
points it returned) bumps a per-(principal, kind) counter of the current minute and
compares a sliding one-minute estimate (this minute plus the unexpired share of the last)
with the limit: ``burst_multiplier`` x the principal's baseline (never below the
policy's floor). Crossing it raises a *flag*; ``check`` (in the guard, every request) is
one dictionary lookup that finds no flag. A flag is met by a token authenticated after
it was raised (the user stepped up), and clears once the rate is back under the limit
or after two quiet minutes.

Baselines are the median, over the last ``baseline_days``, of each active hour's busiest
minute: a robust "normal peak" that one past burst does not move. They come from the
database (``risk.store.load_baselines``) every few minutes, for the principals seen,
off the request path; finished minutes go back the same way (``drain`` →
``risk.store.save_usage``). Counters are per process: a client on one keep-alive
connection lands on one worker, so a burst is seen whole there.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bastion.risk.continuous import Challenge
from bastion.risk.decision import RiskDecision, decide
from bastion.risk.geo import UNKNOWN
from bastion.risk.policy import VOLUME_KINDS, RiskPolicy
from bastion.risk.signals import contribution

__all__ = ["Burst", "HourlyUsage", "VolumeMeter"]

MINUTE = 60
QUIET_SECONDS = 2 * MINUTE
DEFAULT_MAX_KEYS = 200_000

UsageKey = tuple[str, str]  # principal id, kind
HourlyUsage = dict[tuple[str, str, datetime], list[int]]  # → [total, busiest minute]


@dataclass(frozen=True, slots=True)
class Burst:
    kind: str
    since: datetime
    rate: float  # points per minute when raised
    limit: float
    baseline: float


class VolumeMeter:
    def __init__(self, *, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.max_keys = max_keys
        # [minute index, points this minute, points the minute before]
        self._slots: dict[UsageKey, list[int]] = {}
        self._flags: dict[str, Burst] = {}
        self._baselines: dict[UsageKey, float] = {}
        self._finished: HourlyUsage = {}
        self._lock = threading.Lock()  # rollover and drain only

    # -- request path -----------------------------------------------------------------

    def add(
        self, principal_id: str, kind: str, points: int, *, now: datetime, policy: RiskPolicy
    ) -> None:
        """Count ``points`` returned to ``principal_id`` by a ``kind`` request."""
        seconds = now.timestamp()
        minute = int(seconds // MINUTE)
        key = (principal_id, kind)
        slot = self._slots.get(key)
        if slot is None or slot[0] != minute:
            slot = self._roll(key, slot, minute)
        slot[1] += points
        share = 1.0 - (seconds % MINUTE) / MINUTE
        rate = slot[1] + slot[2] * share
        baseline = self._baselines.get(key, 0.0)
        limit = policy.burst_multiplier * max(baseline, float(policy.volume_floors[kind]))
        flag = self._flags.get(principal_id)
        if rate > limit:
            if flag is None:
                self._flags[principal_id] = Burst(kind, now, rate, limit, baseline)
        elif flag is not None and flag.kind == kind:
            del self._flags[principal_id]

    def check(
        self,
        principal_id: str,
        *,
        acr: str,
        auth_time: datetime | None,
        now: datetime,
        policy: RiskPolicy,
    ) -> Challenge | None:
        """The step-up a burst of this principal asks for, or None (the common case)."""
        flag = self._flags.get(principal_id)
        if flag is None:
            return None
        if (now - flag.since).total_seconds() > QUIET_SECONDS and self._quiet(principal_id, now):
            self._flags.pop(principal_id, None)
            return None
        challenge = Challenge(_decision(flag, policy), since=flag.since)
        return None if challenge.satisfied_by(acr=acr, auth_time=auth_time) else challenge

    def flag(self, principal_id: str) -> Burst | None:
        return self._flags.get(principal_id)

    # -- housekeeping (off the request path) ---------------------------------------------

    def set_baselines(self, baselines: Mapping[UsageKey, float]) -> None:
        self._baselines.update(baselines)

    def principals(self) -> set[str]:
        return {principal for principal, _ in self._slots}

    def drain(self, *, now: datetime) -> HourlyUsage:
        """Finished minutes as hourly usage rows, and forget slots idle for 2 minutes."""
        current = int(now.timestamp() // MINUTE)
        with self._lock:
            for key, slot in list(self._slots.items()):
                minute, points = slot[0], slot[1]
                if minute >= current:
                    continue
                self._finish(key, minute, points)
                if minute == current - 1 and points:
                    slot[0], slot[1], slot[2] = current, 0, points  # still the "last minute"
                else:
                    del self._slots[key]
            finished, self._finished = self._finished, {}
        return finished

    def _roll(self, key: UsageKey, slot: list[int] | None, minute: int) -> list[int]:
        with self._lock:
            previous = 0
            if slot is not None:
                self._finish(key, slot[0], slot[1])
                previous = slot[1] if slot[0] == minute - 1 else 0
            if len(self._slots) >= self.max_keys:
                self._slots.clear()
            fresh = [minute, 0, previous]
            self._slots[key] = fresh
            return fresh

    def _finish(self, key: UsageKey, minute: int, points: int) -> None:
        if points <= 0:
            return
        hour = datetime.fromtimestamp(minute * MINUTE - (minute * MINUTE) % 3600, UTC)
        row = self._finished.setdefault((key[0], key[1], hour), [0, 0])
        row[0] += points
        row[1] = max(row[1], points)

    def _quiet(self, principal_id: str, now: datetime) -> bool:
        current = int(now.timestamp() // MINUTE)
        return all(
            self._slots.get((principal_id, kind), [0, 0, 0])[0] < current - 1
            for kind in VOLUME_KINDS
        )


def _decision(flag: Burst, policy: RiskPolicy) -> RiskDecision:
    reason = contribution(
        policy,
        f"volume_{flag.kind}_burst",
        points_per_minute=round(flag.rate),
        baseline=round(flag.baseline),
        limit=round(flag.limit),
    )
    return decide([reason], policy.thresholds, context="session", location=UNKNOWN)
