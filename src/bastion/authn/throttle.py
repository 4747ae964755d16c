"""Failed-login throttling per account and per client address.

Throttling, not lock-out: an attacker cannot lock a victim out for long, and
every limit answers ``429`` with ``Retry-After``. Counters live in this process
(one replica); the scale-out backend keeps them in PostgreSQL.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from bastion.clock import monotonic
from bastion.errors import RateLimited


class FailureThrottle:
    """At most ``limit`` failures per key in a sliding ``window`` of seconds."""

    def __init__(self, *, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def check(self, key: str) -> None:
        """Raise RateLimited when ``key`` has used up its failures."""
        now = monotonic()
        with self._lock:
            failures = self._recent(key, now)
            if len(failures) >= self.limit:
                retry_after = max(1, math.ceil(failures[0] + self.window - now))
                raise RateLimited(retry_after)

    def fail(self, key: str) -> None:
        now = monotonic()
        with self._lock:
            if len(self._failures) >= self.max_keys:
                self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(key, deque()).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
