"""The liveness cache (authn.liveness): single-flight loads, TTL, clear() beats stale loads."""

from __future__ import annotations

import asyncio
import threading
import time

from bastion.authn.liveness import LivenessCache


def test_concurrent_misses_share_one_load() -> None:
    calls: list[int] = []

    def load() -> str:
        calls.append(1)
        time.sleep(0.05)
        return "state"

    async def scenario() -> list[str]:
        cache = LivenessCache(ttl=10)
        return list(await asyncio.gather(*(cache.get_or_load("k", load) for _ in range(8))))

    assert asyncio.run(scenario()) == ["state"] * 8
    assert len(calls) == 1


def test_entries_expire_after_the_ttl() -> None:
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    async def scenario() -> tuple[int, int, int]:
        cache = LivenessCache(ttl=0.05)
        first = await cache.get_or_load("k", load)
        cached = await cache.get_or_load("k", load)
        await asyncio.sleep(0.08)
        return first, cached, await cache.get_or_load("k", load)

    assert asyncio.run(scenario()) == (1, 1, 2)


def test_clear_discards_a_load_that_started_before_it() -> None:
    release = threading.Event()

    def slow_stale_load() -> str:
        release.wait(5)
        return "stale"

    async def scenario() -> str | None:
        cache = LivenessCache(ttl=10)
        pending = asyncio.ensure_future(cache.get_or_load("k", slow_stale_load))
        await asyncio.sleep(0.01)
        cache.clear()  # e.g. a user was suspended meanwhile
        release.set()
        assert await pending == "stale"  # the caller that asked before still gets its answer
        return cache.get("k")  # …but it is not kept for the next request

    assert asyncio.run(scenario()) is None


def test_an_entry_put_until_a_moment_dies_then() -> None:
    cache = LivenessCache(ttl=10)
    cache.put("gone", "value", until=time.monotonic() - 0.001)
    cache.put("kept", "value", until=time.monotonic() + 5)
    assert cache.get("gone") is None
    assert cache.get("kept") == "value"
    assert cache.expiry("kept") > time.monotonic() + 4
    assert cache.expiry("absent") == 0.0
