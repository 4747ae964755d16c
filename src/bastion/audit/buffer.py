"""Frequent events, counted in memory and appended once a second.

A search costs one dictionary update on its own path; every second each (caller,
collection, kind) that searched becomes one ``points.searched`` event with the number
of searches and of results. Sign-ins refused by a throttle are counted the same way,
one ``login.failure`` (reason ``rate_limited``) per (limit, address) and second, and so
are refused API keys (``api_key.rejected``, per key and reason): a flood of refused
attempts must not become a flood of writes, each waiting for the database's write lock.
Flushed by the app's background task and at shutdown.

Each counted event is recorded on its own (issue 11, "audit batch poisoning"): one that
cannot be built or written is logged and skipped, never taking the others with it, and
a batch the database refuses as a whole is counted again for the next flush.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from bastion.audit.events import AuditEvent
from bastion.audit.log import emit
from bastion.clock import Clock
from bastion.domain import Principal
from bastion.storage import Database

log = logging.getLogger("bastion.audit")
K = TypeVar("K")
V = TypeVar("V")

SearchKey = tuple[str, str, str | None, str]  # actor, tenant, resource, kind
RefusedKey = tuple[str | None, str | None]  # throttle scope, address
RejectedKey = tuple[str, str | None, str | None, str | None]  # reason, key, account, tenant


class AuditBuffer:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._searches: dict[SearchKey, list[int]] = {}
        self._refused: dict[RefusedKey, int] = {}
        self._rejected: dict[RejectedKey, int] = {}
        self._lock = threading.Lock()

    def count_refused_sign_in(self, scope: str | None, ip: str | None) -> None:
        with self._lock:
            self._refused[(scope, ip)] = self._refused.get((scope, ip), 0) + 1

    def count_rejected_key(
        self, reason: str, *, key_id: str | None, account_id: str | None, tenant_id: str | None
    ) -> None:
        key = (reason, key_id, account_id, tenant_id)
        with self._lock:
            self._rejected[key] = self._rejected.get(key, 0) + 1

    def count_search(
        self, principal: Principal, resource: str | None, kind: str, results: int
    ) -> None:
        key = (principal.id, principal.tenant_id, resource, kind)
        with self._lock:
            tally = self._searches.get(key)
            if tally is None:
                self._searches[key] = [1, results]
            else:
                tally[0] += 1
                tally[1] += results

    def flush(self) -> int:
        """Append what was counted since the last flush; the number of events written."""
        with self._lock:
            searches, self._searches = self._searches, {}
            refused, self._refused = self._refused, {}
            rejected, self._rejected = self._rejected, {}
        built = [
            *(_built(_refused_event, key, count) for key, count in refused.items()),
            *(_built(_rejected_event, key, count) for key, count in rejected.items()),
            *(_built(_search_event, key, tally) for key, tally in searches.items()),
        ]
        events = [event for event in built if event is not None]
        if not events:
            return 0
        written = 0
        try:
            with self.db.begin() as conn:
                now = self.clock.now()
                for event in events:
                    try:
                        with conn.begin_nested():  # a savepoint: one failure is one event
                            emit(conn, event, now=now)
                        written += 1
                    except Exception:
                        log.exception("could not record one %s event; recording the others",
                                      event.action)  # fmt: skip
        except Exception:
            self._count_again(searches, refused, rejected)
            raise
        return written

    def _count_again(
        self,
        searches: dict[SearchKey, list[int]],
        refused: dict[RefusedKey, int],
        rejected: dict[RejectedKey, int],
    ) -> None:
        """Put back what a failed flush took, so the next one records it."""
        with self._lock:
            for key, (count, results) in searches.items():
                tally = self._searches.setdefault(key, [0, 0])
                tally[0] += count
                tally[1] += results
            for refused_key, attempts in refused.items():
                self._refused[refused_key] = self._refused.get(refused_key, 0) + attempts
            for rejected_key, attempts in rejected.items():
                self._rejected[rejected_key] = self._rejected.get(rejected_key, 0) + attempts


def _built(make: Callable[[K, V], AuditEvent], key: K, value: V) -> AuditEvent | None:
    try:
        return make(key, value)
    except Exception:
        log.exception("could not build a counted audit event; recording the others")
        return None


def _refused_event(key: RefusedKey, attempts: int) -> AuditEvent:
    scope, ip = key
    return AuditEvent(
        action="login.failure",
        outcome="denied",
        actor=None,  # the typed username is not kept (it may be a password)
        tenant_id=None,
        reason="rate_limited",
        details={"scope": scope, "ip": ip, "attempts": attempts},
    )


def _rejected_event(key: RejectedKey, attempts: int) -> AuditEvent:
    reason, key_id, account_id, tenant_id = key
    return AuditEvent(
        action="api_key.rejected",
        outcome="denied",
        actor=None,  # whoever presented it; the key's account did not act
        tenant_id=tenant_id,
        resource=f"api_key:{key_id}" if key_id else None,
        reason=reason,
        details={"key_id": key_id, "service_account_id": account_id, "attempts": attempts},
    )


def _search_event(key: SearchKey, tally: list[int]) -> AuditEvent:
    actor, tenant_id, resource, kind = key
    count, results = tally
    collection = resource.removeprefix("collection:") if resource else None
    return AuditEvent(
        action="points.searched",
        outcome="success",
        actor=actor,
        tenant_id=tenant_id,
        resource=resource,
        details={
            "collection": collection,
            "kind": kind,
            "searches": count,
            "result_count": results,
        },
    )
