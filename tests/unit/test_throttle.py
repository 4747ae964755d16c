"""Failed-login throttles kept in the database: sliding window, Retry-After, bounded table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bastion.authn.throttle import FailureThrottle
from bastion.errors import RateLimited
from bastion.sealing import Sealer
from bastion.storage import Database
from bastion.storage.schema import login_failures

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SEALER = Sealer(bytes(range(32)))
ACCOUNTS = FailureThrottle(scope="account", limit=3, window=60)
ADDRESSES = FailureThrottle(scope="address", limit=3, window=60)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'bastion.db'}")
    database.migrate()
    yield database
    database.dispose()


def fail(db: Database, throttle: FailureThrottle, key: str, at: datetime) -> None:
    with db.begin() as conn:
        throttle.fail(conn, key, now=at)


def check(db: Database, throttle: FailureThrottle, key: str, at: datetime) -> None:
    with db.read() as conn:
        throttle.check(conn, key, now=at)


def rows(db: Database) -> int:
    with db.read() as conn:
        count: int = conn.execute(select(func.count()).select_from(login_failures)).scalar_one()
    return count


def test_the_limit_th_failure_closes_the_key_with_retry_after(db: Database) -> None:
    alice = ACCOUNTS.key(SEALER, "alice")
    for second in range(3):
        check(db, ACCOUNTS, alice, T0 + timedelta(seconds=second))
        fail(db, ACCOUNTS, alice, T0 + timedelta(seconds=second))
    with pytest.raises(RateLimited) as limited:
        check(db, ACCOUNTS, alice, T0 + timedelta(seconds=10))
    assert limited.value.retry_after == 50  # the oldest failure (T0) leaves the window at +60


def test_the_window_slides_one_failure_at_a_time(db: Database) -> None:
    alice = ACCOUNTS.key(SEALER, "alice")
    for second in (0, 20, 40):
        fail(db, ACCOUNTS, alice, T0 + timedelta(seconds=second))
    check(db, ACCOUNTS, alice, T0 + timedelta(seconds=60))  # the first has left: open again
    fail(db, ACCOUNTS, alice, T0 + timedelta(seconds=60))
    with pytest.raises(RateLimited) as limited:
        check(db, ACCOUNTS, alice, T0 + timedelta(seconds=61))
    assert limited.value.retry_after == 19  # the one at +20 leaves at +80


def test_retry_after_is_at_least_one_second(db: Database) -> None:
    alice = ACCOUNTS.key(SEALER, "alice")
    for _ in range(3):
        fail(db, ACCOUNTS, alice, T0)
    with pytest.raises(RateLimited) as limited:
        check(db, ACCOUNTS, alice, T0 + timedelta(seconds=59, microseconds=999_000))
    assert limited.value.retry_after == 1


def test_keys_and_scopes_count_apart(db: Database) -> None:
    for _ in range(3):
        fail(db, ACCOUNTS, ACCOUNTS.key(SEALER, "alice"), T0)
    check(db, ACCOUNTS, ACCOUNTS.key(SEALER, "bob"), T0)
    # The same text in the other scope is another key, and another count.
    check(db, ADDRESSES, ADDRESSES.key(SEALER, "alice"), T0)
    assert ACCOUNTS.key(SEALER, "alice") != ADDRESSES.key(SEALER, "alice")


def test_clear_forgets_only_that_key(db: Database) -> None:
    alice, bob = ACCOUNTS.key(SEALER, "alice"), ACCOUNTS.key(SEALER, "bob")
    for _ in range(3):
        fail(db, ACCOUNTS, alice, T0)
        fail(db, ACCOUNTS, bob, T0)
    with db.begin() as conn:
        ACCOUNTS.clear(conn, alice)
    check(db, ACCOUNTS, alice, T0)
    with pytest.raises(RateLimited):
        check(db, ACCOUNTS, bob, T0)


def test_expired_failures_are_deleted_when_one_is_recorded(db: Database) -> None:
    for n in range(50):
        fail(db, ACCOUNTS, ACCOUNTS.key(SEALER, f"user{n}"), T0)
    fail(db, ADDRESSES, ADDRESSES.key(SEALER, "203.0.113.7"), T0)
    assert rows(db) == 51
    fail(db, ACCOUNTS, ACCOUNTS.key(SEALER, "late"), T0 + timedelta(seconds=60))
    assert rows(db) == 2  # the account failures of the last window, and the other scope's


def test_the_typed_username_is_never_stored(db: Database) -> None:
    typed = "Tr0ub4dor&3 typed into the username field"
    fail(db, ACCOUNTS, ACCOUNTS.key(SEALER, typed), T0)
    with db.read() as conn:
        stored = conn.execute(select(login_failures.c.key_hash)).scalar_one()
    assert typed not in stored
    assert stored == ACCOUNTS.key(SEALER, typed)
    assert stored != ACCOUNTS.key(Sealer(bytes(32)), typed)  # keyed: another master key differs


def test_a_username_with_a_lone_surrogate_is_a_key_like_any_other() -> None:
    assert len(ACCOUNTS.key(SEALER, "\ud800")) == 64


DELAYED = FailureThrottle(scope="account", limit=8, window=3600, free=3, first_delay=30,
                          max_delay=100)  # fmt: skip


def test_after_the_free_failures_each_attempt_waits_a_doubling_delay(db: Database) -> None:
    alice = DELAYED.key(SEALER, "alice")
    for second in range(3):
        check(db, DELAYED, alice, T0 + timedelta(seconds=second))
        fail(db, DELAYED, alice, T0 + timedelta(seconds=second))
    with pytest.raises(RateLimited) as waiting:
        check(db, DELAYED, alice, T0 + timedelta(seconds=12))
    assert waiting.value.retry_after == 20  # 30 s after the newest failure (at +2)
    check(db, DELAYED, alice, T0 + timedelta(seconds=32))  # the delay has passed
    fail(db, DELAYED, alice, T0 + timedelta(seconds=32))
    with pytest.raises(RateLimited) as longer:
        check(db, DELAYED, alice, T0 + timedelta(seconds=33))
    assert longer.value.retry_after == 59  # 60 s now
    assert [DELAYED.delay_after(n) for n in range(2, 8)] == [0, 30, 60, 100, 100, 100]


def test_the_limit_still_closes_a_delayed_key_until_the_oldest_leaves(db: Database) -> None:
    alice = DELAYED.key(SEALER, "alice")
    for n in range(8):
        fail(db, DELAYED, alice, T0 + timedelta(seconds=n * 200))  # each after its delay
    with pytest.raises(RateLimited) as closed:
        check(db, DELAYED, alice, T0 + timedelta(seconds=1600))
    assert closed.value.retry_after == 2000  # the first failure leaves the window at +3600


def test_a_large_count_does_not_overflow_the_delay() -> None:
    assert DELAYED.delay_after(10_000) == 100
