"""Failure throttling: failed sign-ins per account and per client address, failed
second-factor codes per account and per method (``authn.guessing``).

Throttling by delay (NIST SP 800-63B-4 §3.2.2), not a quarter-hour lock-out: after
``free`` failures each further attempt waits a delay that doubles with every failure (up
to ``max_delay``), and ``limit`` failures in the ``window`` stop the key until the oldest
leaves the window, a success clears it, or an administrator unlocks it. Every refusal
answers ``429`` with ``Retry-After``.

Failures are rows of ``login_failures`` in the database, so every worker process counts
the same failures. The caller checks them before it checks the password, and again, with
the outcome recorded, in the write transaction that follows (on SQLite a ``BEGIN
IMMEDIATE``, serialised across processes): attempts that ran at the same moment are
counted one after another, and two never both get an answer on the same count. (On
PostgreSQL, read committed, attempts running at the same moment on one key can each pass
a count just under the limit.)
Times come from the injected clock as aware UTC datetimes, never from a process's
monotonic clock. A key is stored as a keyed fingerprint, never as typed (people type their password
into the username field). Recording a failure deletes the expired rows of its scope, so
the table holds no more than one window of failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, func, insert, select

from bastion.errors import RateLimited
from bastion.sealing import Sealer
from bastion.storage import new_id
from bastion.storage.schema import login_failures

__all__ = ["FailureThrottle"]


# Built once: they run inside the sign-in's write transaction, which other writers wait
# for, and building a statement costs several times what SQLite takes to run it.
_t = login_failures.c
_RECENT = (
    _t.scope == bindparam("scope"),
    _t.key_hash == bindparam("key"),
    _t.at > bindparam("since"),
)
_COUNT_RECENT = select(func.count()).select_from(login_failures).where(*_RECENT)
_NTH_NEWEST = (
    select(_t.at).where(*_RECENT).order_by(_t.at.desc()).limit(1).offset(bindparam("skip"))
)
_RECORD = insert(login_failures)
_EXPIRE = delete(login_failures).where(_t.scope == bindparam("scope"), _t.at <= bindparam("since"))
_FORGET = delete(login_failures).where(
    _t.scope == bindparam("scope"), _t.key_hash == bindparam("key")
)


@dataclass(frozen=True)
class FailureThrottle:
    """At most ``limit`` failures per key of ``scope`` in a sliding ``window`` of seconds;
    with ``free`` set, growing delays between the failures that follow the first ``free``."""

    scope: str  # "address", "account", "account_familiar", "factor"…: one table, apart
    limit: int
    window: int
    # After ``free`` failures in the window, the next attempt waits ``first_delay`` seconds
    # after the newest failure, doubling with each further failure, at most ``max_delay``.
    free: int | None = None
    first_delay: int = 30
    max_delay: int = 3600

    def delay_after(self, failures: int) -> int:
        """Seconds an attempt must wait after the newest of ``failures`` failures."""
        if self.free is None or failures < self.free:
            return 0
        return min(self.max_delay, self.first_delay << min(failures - self.free, 24))

    def key(self, sealer: Sealer, value: str) -> str:
        """The stored form of ``value`` (a username or an address) for this scope."""
        data = value.encode("utf-8", "surrogatepass")
        return sealer.fingerprint(data, context=b"login_failures:" + self.scope.encode())

    def _since(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.window)

    def failures(self, conn: Connection, key: str, *, now: datetime) -> int:
        """How many failures of ``key`` are in the window."""
        recent = {"scope": self.scope, "key": key, "since": self._since(now)}
        count: int = conn.execute(_COUNT_RECENT, recent).scalar_one()
        return count

    def retry_after(self, conn: Connection, key: str, *, now: datetime) -> int:
        """Seconds until ``key`` may try again (0: now)."""
        recent = {"scope": self.scope, "key": key, "since": self._since(now)}
        count: int = conn.execute(_COUNT_RECENT, recent).scalar_one()
        if count >= self.limit:
            # Allowed again once the limit-th newest failure leaves the window.
            counted_from = conn.execute(_NTH_NEWEST, {**recent, "skip": self.limit - 1})
            opens_at = counted_from.scalar_one() + timedelta(seconds=self.window)
        elif delay := self.delay_after(count):
            newest = conn.execute(_NTH_NEWEST, {**recent, "skip": 0}).scalar_one()
            opens_at = newest + timedelta(seconds=delay)
        else:
            return 0
        seconds = (opens_at - now).total_seconds()
        return max(1, math.ceil(seconds)) if seconds > 0 else 0

    def check(self, conn: Connection, key: str, *, now: datetime) -> None:
        """Raise RateLimited when ``key`` has used up its failures or must wait."""
        wait = self.retry_after(conn, key, now=now)
        if wait:
            raise RateLimited(wait, scope=self.scope)

    def fail(self, conn: Connection, key: str, *, now: datetime) -> None:
        """Record one failure of ``key``; forget every failure of the scope that has expired."""
        conn.execute(_EXPIRE, {"scope": self.scope, "since": self._since(now)})
        conn.execute(
            _RECORD, {"id": new_id("lfl"), "scope": self.scope, "key_hash": key, "at": now}
        )

    def clear(self, conn: Connection, key: str) -> None:
        """Forget the failures of ``key`` (a successful sign-in of that account)."""
        conn.execute(_FORGET, {"scope": self.scope, "key": key})
