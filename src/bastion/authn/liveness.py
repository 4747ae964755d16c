"""The liveness cache: what the database says about a credential, re-read at most every
``LIVENESS_TTL`` seconds per key, loaded once for many concurrent requests.

So a revoked token, a suspended user, a removed role or a deleted key stops working
within one TTL on every replica, without a database round trip on every request.
Writers that change such state call ``clear()`` after their commit (this process then
re-reads at once).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from bastion.clock import monotonic

LIVENESS_TTL = 0.5
T = TypeVar("T")


class LivenessCache:
    """A tiny TTL map: credential state re-read from the database at most every TTL.

    Loads are single-flight: requests that miss the same key together share one
    database read instead of each starting their own (a burst of concurrent requests
    would otherwise stampede the database every TTL). ``clear()`` also discards what
    loads started before it would have stored.
    """

    def __init__(self, ttl: float = LIVENESS_TTL, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._loading: dict[str, asyncio.Future[Any]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    async def get_or_load(self, key: str, load: Callable[[], T]) -> T:
        """The cached value, or ``load()`` run in a worker thread (once per key at a time)."""
        value = self.get(key)
        if value is not None:
            return value  # type: ignore[no-any-return]
        loading = self._loading.get(key)
        if loading is None:
            generation = self._generation
            loading = asyncio.ensure_future(run_in_threadpool(load))
            self._loading[key] = loading

            def settle(done: asyncio.Future[Any]) -> None:
                if self._loading.get(key) is done:
                    del self._loading[key]
                if (
                    not done.cancelled()
                    and done.exception() is None
                    and generation == self._generation
                ):
                    self.put(key, done.result())

            loading.add_done_callback(settle)
        return await asyncio.shield(loading)

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < monotonic():
            return None
        return entry[1]

    def put(self, key: Hashable, value: Any, *, until: float | None = None) -> None:
        """Keep ``value`` for ``ttl`` seconds, or until the monotonic time ``until``."""
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (monotonic() + self.ttl if until is None else until, value)

    def expiry(self, key: Hashable) -> float:
        """When the entry for ``key`` stops being served (monotonic; 0.0 when absent)."""
        entry = self._entries.get(key)
        return 0.0 if entry is None else entry[0]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._loading.clear()
            self._generation += 1
