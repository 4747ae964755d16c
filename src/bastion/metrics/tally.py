"""The counters of this process: cheap to bump, read when scraped.

A request costs one lock, one dictionary lookup and three additions (``observe_request``),
measured at well under a microsecond; prometheus-client's own multiprocess values cost
several µs per request (an mmap write per counter and per histogram bucket; see
docs/observability.md). Scrapes read ``snapshot()``; with several worker processes each
one publishes its snapshot to a shared folder (``bastion.metrics.shared``) and the
worker that answers a scrape adds them up.

Domain counters come from the audit log's single entrance: ``count_audit_event`` is
called by ``audit.log.emit`` for each appended event and maps it through ``RULES`` (data,
not branches) to the counters it feeds.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from bastion.metrics.catalog import (
    AUDIT_EVENTS,
    LATENCY_BUCKETS,
    LOGINS,
    POINTS_DELETED,
    POINTS_UPSERTED,
    SEARCHES,
    STEP_UP_CHALLENGES,
    STEP_UPS,
    THROTTLED,
    MetricSpec,
)

RequestKey = tuple[str, str, int]  # method, route template, status
CounterKey = tuple[str, tuple[str, ...]]  # metric name, label values
# A request tally: [count, sum of seconds, one count per latency bucket, then +Inf].
_TALLY_SIZE = 2 + len(LATENCY_BUCKETS) + 1


class Tally:
    """Counters and request latencies of one process.

    ``observe_request`` takes no lock: it runs on the event loop's thread, the only writer
    of the request tallies, and a lock cost that path µs (measured with the search threads
    running, bench/observe.py). A reader copies them with C-level copies that hold the GIL
    (a consistent view of each tally; a scrape a request late at most). ``count`` is called
    from any thread (audit events are appended in worker threads) and takes a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[RequestKey, list[float]] = {}
        self._counters: dict[CounterKey, float] = {}
        self.changes = 0  # bumped by every change: a publisher compares it

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        slot = 2 + bisect_left(LATENCY_BUCKETS, seconds)  # first bucket with bound ≥ seconds
        key = (method, route, status)
        tally = self._requests.get(key)
        if tally is None:
            tally = self._requests.setdefault(key, [0.0] * _TALLY_SIZE)
        tally[0] += 1
        tally[1] += seconds
        tally[slot] += 1
        self.changes += 1

    def count(self, spec: MetricSpec, labels: tuple[str, ...] = (), amount: float = 1) -> None:
        if len(labels) != len(spec.labels):
            raise ValueError(f"{spec.name} takes labels {spec.labels}")
        key = (spec.name, labels)
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + amount
            self.changes += 1

    def snapshot(self) -> Snapshot:
        """A JSON-ready copy: ``{"requests": [[method, route, status, tally]], "counters":
        [[name, labels, value]]}``."""
        requests = list(self._requests.items())  # one C-level copy: never mid-insertion
        with self._lock:
            counters = list(self._counters.items())
        return {
            "requests": [[*key, tally.copy()] for key, tally in requests],
            "counters": [[name, list(labels), value] for (name, labels), value in counters],
        }


Snapshot = dict[str, list[list[Any]]]


def merged(snapshots: list[Snapshot]) -> Snapshot:
    """The sum of several processes' snapshots (same shape)."""
    requests: dict[RequestKey, list[float]] = {}
    counters: dict[CounterKey, float] = {}
    for snapshot in snapshots:
        for method, route, status, tally in snapshot.get("requests", []):
            key = (method, route, status)
            total = requests.setdefault(key, [0.0] * _TALLY_SIZE)
            for i, value in enumerate(tally[:_TALLY_SIZE]):
                total[i] += value
        for name, labels, value in snapshot.get("counters", []):
            counter_key = (name, tuple(labels))
            counters[counter_key] = counters.get(counter_key, 0) + value
    return {
        "requests": [[*key, tally] for key, tally in requests.items()],
        "counters": [[name, list(labels), value] for (name, labels), value in counters.items()],
    }


# The counters of this process: what its requests and its audit events add to.
TALLY = Tally()


class RecordedEvent(Protocol):
    """What ``count_audit_event`` reads of an ``audit.AuditEvent``."""

    @property
    def action(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def details(self) -> Mapping[str, Any]: ...


Count = tuple[MetricSpec, tuple[str, ...], float]
_CODE = re.compile(r"[a-z0-9_]{1,32}")


def _code(value: Any) -> str:
    """A label value from an event's details: a short code, else ``other`` (bounded)."""
    return value if isinstance(value, str) and _CODE.fullmatch(value) else "other"


def _amount(value: Any) -> float:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else 1.0


def _login_failure(event: RecordedEvent) -> list[Count]:
    if event.reason == "rate_limited":  # one event per limit, address and second
        attempts = _amount(event.details.get("attempts"))
        return [
            (LOGINS, ("throttled",), attempts),
            (THROTTLED, (_code(event.details.get("scope")),), attempts),
        ]
    return [(LOGINS, (_code(event.outcome),), 1)]


RULES: Mapping[str, Callable[[RecordedEvent], list[Count]]] = {
    "login.success": lambda event: [(LOGINS, ("success",), 1)],
    "login.enrollment_required": lambda event: [(LOGINS, ("enrollment_required",), 1)],
    "login.failure": _login_failure,
    "step_up.challenged": lambda event: [
        (STEP_UP_CHALLENGES, (_code(event.details.get("required_acr")),), 1)
    ],
    "step_up.success": lambda event: [(STEP_UPS, ("success",), 1)],
    "step_up.failure": lambda event: [(STEP_UPS, ("failure",), 1)],
    "points.searched": lambda event: [
        (SEARCHES, (_code(event.details.get("kind")),), _amount(event.details.get("searches")))
    ],
    "points.upserted": lambda event: [(POINTS_UPSERTED, (), _amount(event.details.get("count")))],
    "points.deleted": lambda event: [(POINTS_DELETED, (), _amount(event.details.get("count")))],
}


def count_audit_event(event: RecordedEvent) -> None:
    """Count an event just appended to the audit log (called by ``audit.log.emit``)."""
    TALLY.count(AUDIT_EVENTS, (event.action, event.outcome))
    rule = RULES.get(event.action)
    if rule is not None:
        for spec, labels, amount in rule(event):
            TALLY.count(spec, labels, amount)
