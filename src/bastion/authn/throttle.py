"""Failed-login throttling per account and per client address.

Throttling, not lock-out: an attacker cannot lock a victim out for long, and
every limit answers ``429`` with ``Retry-After``.

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
    """At most ``limit`` failures per key of ``scope`` in a sliding ``window`` of seconds."""

    scope: str  # "account" | "address": one table, separate counts
    limit: int
    window: int

    def key(self, sealer: Sealer, value: str) -> str:
        """The stored form of ``value`` (a username or an address) for this scope."""
        data = value.encode("utf-8", "surrogatepass")
        return sealer.fingerprint(data, context=b"login_failures:" + self.scope.encode())

    def _since(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.window)

    def check(self, conn: Connection, key: str, *, now: datetime) -> None:
        """Raise RateLimited when ``key`` has used up its failures."""
        recent = {"scope": self.scope, "key": key, "since": self._since(now)}
        if conn.execute(_COUNT_RECENT, recent).scalar_one() < self.limit:
            return
        # Allowed again once the limit-th newest failure leaves the window.
        counted_from = conn.execute(_NTH_NEWEST, {**recent, "skip": self.limit - 1}).scalar_one()
        frees_at = counted_from + timedelta(seconds=self.window)
        retry_after = max(1, math.ceil((frees_at - now).total_seconds()))
        raise RateLimited(retry_after, scope=self.scope)

    def fail(self, conn: Connection, key: str, *, now: datetime) -> None:
        """Record one failure of ``key``; forget every failure of the scope that has expired."""
        conn.execute(_EXPIRE, {"scope": self.scope, "since": self._since(now)})
        conn.execute(
            _RECORD, {"id": new_id("lfl"), "scope": self.scope, "key_hash": key, "at": now}
        )

    def clear(self, conn: Connection, key: str) -> None:
        """Forget the failures of ``key`` (a successful sign-in of that account)."""
        conn.execute(_FORGET, {"scope": self.scope, "key": key})
