"""The risk store's SQL on PostgreSQL: history queries, upserts, devices (no SQLite-only SQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bastion.risk import Outcome
from bastion.risk.devices import device_credential_hash
from bastion.risk.schema import risk_usage
from bastion.risk.store import (
    find_device,
    forgive_failures,
    load_baselines,
    prune,
    recent_flagged,
    revoke_device,
    save_usage,
)
from bastion.storage import Database
from tests.support.postgres import pg_binary, postgres_cluster
from tests.support.risk import PARIS, SAO_PAULO, SYDNEY, T0, Harness, make_user

pytestmark = pytest.mark.skipif(
    pg_binary("initdb") is None, reason="PostgreSQL server binaries not installed"
)


@pytest.fixture(scope="module")
def pg() -> Iterator[Database]:
    with postgres_cluster() as url:
        database = Database(url)
        database.migrate()
        yield database
        database.dispose()


def test_history_reputation_devices_and_usage_on_postgres(pg: Database) -> None:
    assert pg.engine.dialect.name == "postgresql"
    harness = Harness(pg)
    alice = make_user(pg, "alice")
    laptop = harness.remember(alice, at=T0 - timedelta(days=2))
    harness.settle(alice, days=5)
    for n in range(12):
        harness.attempt(
            username=f"u{n}", user_id=None, ip=SAO_PAULO, at=T0 + timedelta(seconds=n),
            outcome="failure",
        )  # fmt: skip
    spraying = harness.assess(username="alice", user_id=alice, ip=SAO_PAULO, at=T0)
    assert spraying.history.address_usernames == 12
    assert spraying.history.address_reputation == pytest.approx(12.0, rel=0.01)
    assert spraying.decision.has("address_spraying")
    known = harness.assess(username="alice", user_id=alice, ip=PARIS, at=T0, device=laptop)
    assert known.decision.outcome is Outcome.ALLOW
    harness.attempt(username="alice", user_id=alice, ip=PARIS, at=T0, outcome="success")
    harness.attempt(
        username="alice", user_id=alice, ip=SYDNEY, at=T0 + timedelta(hours=1), outcome="denied"
    )
    with pg.begin() as conn:
        save_usage(conn, {("usr_a", "scroll", T0.replace(minute=0)): [10, 7]})
        save_usage(conn, {("usr_a", "scroll", T0.replace(minute=0)): [5, 9]})
        save_usage(conn, {("usr_a", "scroll", T0.replace(minute=0)): [5, 3]})
        assert revoke_device(conn, user_id=alice, device_id=None, now=T0) == 1
    with pg.read() as conn:
        row = conn.execute(select(risk_usage)).one()
        assert (row.total, row.peak_minute) == (20, 9)
        assert load_baselines(conn, principal_ids=["usr_a"], now=T0, policy=harness.policy) == {}
        device = find_device(conn, device_credential_hash(laptop) or "")
        assert device is not None
        assert device.revoked_at == T0
        flagged = recent_flagged(conn, tenant_id="tnt_test")
        assert flagged[0].country == "AU"
        everything = recent_flagged(conn, tenant_id=None, limit=1000)
        paged = recent_flagged(conn, tenant_id=None, limit=1000, after_id=everything[0].id)
        assert [e.id for e in paged] == [e.id for e in everything[1:]]
    harness.attempt(
        username="alice", user_id=alice, ip=PARIS, at=T0 + timedelta(hours=2), outcome="failure"
    )
    with pg.begin() as conn:
        assert forgive_failures(conn, user_id=alice) == 1
    with pg.begin() as conn:
        prune(conn, now=T0 + timedelta(days=365))
