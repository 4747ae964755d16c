"""The verified-token cache: hits, expiry at exp, LRU bound, session discard."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bastion.clock import ManualClock
from bastion.tokens.access import VerifiedAccessToken, issue_access_token, verify_access_token
from bastion.tokens.cache import VerifiedTokenCache
from bastion.tokens.signing_keys import KeyRing

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def verified(
    *, session_id: str | None = "ses_1", subject: str = "usr_alice", ttl: int = 900
) -> VerifiedAccessToken:
    return VerifiedAccessToken(
        issuer="https://bastion.example",
        subject=subject,
        audience=("bastion",),
        expires_at=T0 + timedelta(seconds=ttl),
        issued_at=T0,
        not_before=T0,
        jti=f"jti-{subject}-{session_id}-{ttl}",
        auth_time=T0,
        acr="aal2",
        amr=("pwd", "otp"),
        tenant="default",
        roles=("viewer",),
        session_id=session_id,
        kid="k" * 43,
    )


def test_miss_then_hit() -> None:
    cache = VerifiedTokenCache()
    entry = verified()
    assert cache.get("tok", now=T0) is None
    cache.put("tok", entry)
    assert cache.get("tok", now=T0) is entry
    assert cache.get("tok2", now=T0) is None
    assert len(cache) == 1


def test_entries_expire_at_the_token_exp() -> None:
    clock = ManualClock(T0)
    cache = VerifiedTokenCache()
    cache.put("tok", verified(ttl=60))
    clock.advance(59)
    assert cache.get("tok", now=clock.now()) is not None
    clock.advance(1)
    assert cache.get("tok", now=clock.now()) is None
    assert len(cache) == 0  # the expired entry is dropped, not kept around


def test_lru_bound_evicts_the_least_recently_used() -> None:
    cache = VerifiedTokenCache(max_entries=2)
    cache.put("a", verified(session_id="a"))
    cache.put("b", verified(session_id="b"))
    assert cache.get("a", now=T0) is not None  # "b" is now the least recently used
    cache.put("c", verified(session_id="c"))
    assert len(cache) == 2
    assert cache.get("b", now=T0) is None
    assert cache.get("a", now=T0) is not None
    assert cache.get("c", now=T0) is not None
    # The evicted entry left the session index too.
    assert cache.discard_session("b") == 0


def test_put_twice_keeps_one_entry() -> None:
    cache = VerifiedTokenCache()
    cache.put("tok", verified(session_id="s1"))
    cache.put("tok", verified(session_id="s2"))
    assert len(cache) == 1
    assert cache.discard_session("s1") == 0
    assert cache.discard_session("s2") == 1


def test_discard_session_forgets_all_its_tokens() -> None:
    cache = VerifiedTokenCache()
    cache.put("t1", verified(session_id="s1", ttl=100))
    cache.put("t2", verified(session_id="s1", ttl=200))
    cache.put("t3", verified(session_id="s2"))
    cache.put("t4", verified(session_id=None))
    assert cache.discard_session("s1") == 2
    assert cache.get("t1", now=T0) is None
    assert cache.get("t2", now=T0) is None
    assert cache.get("t3", now=T0) is not None
    assert cache.get("t4", now=T0) is not None
    assert cache.discard_session("unknown") == 0


def test_discard_one_token_and_subject() -> None:
    cache = VerifiedTokenCache()
    cache.put("t1", verified(subject="usr_alice", session_id="s1"))
    cache.put("t2", verified(subject="usr_alice", session_id="s2"))
    cache.put("t3", verified(subject="usr_bob", session_id="s3"))
    cache.discard("t1")
    assert cache.get("t1", now=T0) is None
    assert cache.discard_subject("usr_alice") == 1
    assert cache.get("t2", now=T0) is None
    assert cache.get("t3", now=T0) is not None


def test_clear() -> None:
    cache = VerifiedTokenCache()
    cache.put("t1", verified())
    cache.clear()
    assert len(cache) == 0
    assert cache.get("t1", now=T0) is None
    assert cache.discard_session("ses_1") == 0


def test_keys_are_hashes_not_tokens() -> None:
    cache = VerifiedTokenCache()
    cache.put("secret-token-value", verified())
    assert all(isinstance(key, bytes) and len(key) == 32 for key in cache._entries)


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        VerifiedTokenCache(max_entries=0)


def test_concurrent_use_from_threads_keeps_the_bound() -> None:
    cache = VerifiedTokenCache(max_entries=50)

    def work(worker: int) -> None:
        for i in range(500):
            token = f"{worker}-{i}"
            cache.put(token, verified(session_id=f"s{i % 7}"))
            cache.get(token, now=T0)
            if i % 50 == 0:
                cache.discard_session(f"s{i % 7}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 50
    indexed = set().union(*cache._by_session.values()) if cache._by_session else set()
    assert indexed == {key for key, v in cache._entries.items() if v.session_id is not None}


def test_cache_in_front_of_verify(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path / "keys", now=T0)
    issued = issue_access_token(
        keyring=ring,
        issuer="https://bastion.example",
        audience="bastion",
        subject="usr_alice",
        tenant="default",
        roles=["viewer"],
        acr="aal2",
        amr=["pwd", "otp"],
        auth_time=T0,
        session_id="ses_1",
        ttl=300,
        now=T0,
    )
    cache = VerifiedTokenCache()
    result = verify_access_token(
        token=issued.token,
        keyring=ring,
        issuer="https://bastion.example",
        audience="bastion",
        now=T0,
    )
    cache.put(issued.token, result)
    assert cache.get(issued.token, now=T0 + timedelta(seconds=299)) == result
    assert cache.get(issued.token, now=T0 + timedelta(seconds=300)) is None
