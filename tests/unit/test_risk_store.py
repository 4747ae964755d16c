"""The risk store on real SQLite: history in two queries, reputation, devices, usage, pruning."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, func, select
from tests.support.risk import (
    LAN,
    LYON_V6,
    PARIS,
    PARIS_HOME,
    SAO_PAULO,
    SEALER,
    SYDNEY,
    T0,
    Harness,
    db,
    make_user,
)

import bastion.risk.schema
import bastion.vectors.schema
from bastion.risk import (
    DEFAULT_RISK_POLICY,
    Outcome,
    RiskDecision,
    RiskPolicy,
    record_login_outcome,
)
from bastion.risk.devices import DeviceState, device_credential_hash, device_state
from bastion.risk.geo import LOCAL, country_location
from bastion.risk.schema import risk_address_reputation, risk_devices, risk_events, risk_usage
from bastion.risk.store import (
    find_device,
    list_devices,
    load_baselines,
    prune,
    recent_flagged,
    record_login,
    remember_device,
    revoke_device,
    save_usage,
    username_key,
)
from bastion.storage import Database, metadata

__all__ = ["db"]


def test_the_migration_creates_exactly_the_tables_the_schema_declares(db: Database) -> None:
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert {t.name for t in metadata.sorted_tables} >= {
        "risk_events",
        "risk_devices",
        "risk_address_reputation",
        "risk_usage",
    }
    assert bastion.risk.schema.risk_events is risk_events


def _count_statements(db: Database) -> list[str]:
    seen: list[str] = []

    def before(*args: Any) -> None:
        seen.append(args[2])

    event.listen(db.engine, "before_cursor_execute", before)
    return seen


def test_a_decision_reads_its_history_in_two_queries(db: Database) -> None:
    harness = Harness(db)
    alice = make_user(db, "alice")
    harness.settle(alice, days=5)
    statements = _count_statements(db)
    risk = harness.assess(username="alice", user_id=alice, ip=PARIS, at=T0)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2
    assert len(risk.history.successes) == 5
    # a presented device credential costs one more lookup by hash
    laptop = harness.remember(alice, at=T0)
    statements.clear()
    harness.assess(username="alice", user_id=alice, ip=PARIS, at=T0, device=laptop)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 3


def test_history_is_newest_first_bounded_and_located(db: Database) -> None:
    harness = Harness(db)
    alice = make_user(db, "alice")
    harness.settle(alice, days=60, ip=PARIS_HOME)
    risk = harness.assess(username="alice", user_id=alice, ip=PARIS, at=T0)
    successes = risk.history.successes
    assert len(successes) == 50
    assert [s.at for s in successes] == sorted((s.at for s in successes), reverse=True)
    assert successes[0].location == country_location("FR")
    assert successes[0].network == PARIS_HOME


def test_failures_of_the_user_and_of_the_network_count_within_the_window(db: Database) -> None:
    harness = Harness(db)
    alice = make_user(db, "alice")
    for n in range(3):  # old: outside the one-hour window
        harness.attempt(
            username="alice", user_id=alice, ip=SAO_PAULO, at=T0 - timedelta(hours=2, minutes=n),
            outcome="failure",
        )  # fmt: skip
    for n in range(4):
        harness.attempt(
            username="alice", user_id=alice, ip=SAO_PAULO, at=T0 - timedelta(minutes=n + 1),
            outcome="failure",
        )  # fmt: skip
    for n in range(2):
        harness.attempt(
            username=f"ghost{n}", user_id=None, ip=SAO_PAULO, at=T0 - timedelta(minutes=30),
            outcome="failure",
        )  # fmt: skip
    history = harness.assess(username="alice", user_id=alice, ip=SAO_PAULO, at=T0).history
    assert history.user_failures == 4
    assert history.address_failures == 6
    assert history.address_usernames == 3  # alice, ghost0, ghost1
    elsewhere = harness.assess(username="alice", user_id=alice, ip=PARIS, at=T0).history
    assert (elsewhere.address_failures, elsewhere.address_usernames) == (0, 0)


def test_ipv6_clients_are_one_network_per_slash_64(db: Database) -> None:
    harness = Harness(db)
    harness.attempt(username="a", user_id=None, ip="2a01:e0a:1:2::1", at=T0, outcome="failure")
    harness.attempt(username="b", user_id=None, ip="2a01:e0a:1:2::ff", at=T0, outcome="failure")
    history = harness.assess(username="c", user_id=None, ip="2a01:e0a:1:2::9", at=T0).history
    assert history.address_usernames == 2
    other = harness.assess(username="c", user_id=None, ip=LYON_V6, at=T0).history
    assert other.address_usernames == 0


def test_reputation_halves_every_half_life(db: Database) -> None:
    harness = Harness(db)
    for n in range(8):
        harness.attempt(username=f"u{n}", user_id=None, ip=SAO_PAULO, at=T0, outcome="failure")
    now = harness.assess(username="x", user_id=None, ip=SAO_PAULO, at=T0).history
    assert now.address_reputation == pytest.approx(8.0)
    half_life = DEFAULT_RISK_POLICY.reputation_half_life_hours
    later = harness.assess(
        username="x", user_id=None, ip=SAO_PAULO, at=T0 + timedelta(hours=half_life)
    ).history
    assert later.address_reputation == pytest.approx(4.0)
    # one more failure then adds to what is left, not to the old total
    harness.attempt(
        username="y", user_id=None, ip=SAO_PAULO, at=T0 + timedelta(hours=half_life),
        outcome="failure",
    )  # fmt: skip
    with db.read() as conn:
        stored = conn.execute(select(risk_address_reputation.c.failures)).scalar_one()
    assert stored == pytest.approx(5.0)


def test_successes_and_denials_do_not_worsen_reputation(db: Database) -> None:
    harness = Harness(db)
    alice = make_user(db, "alice")
    harness.attempt(username="alice", user_id=alice, ip=PARIS, at=T0, outcome="success")
    harness.attempt(username="alice", user_id=alice, ip=PARIS, at=T0, outcome="denied")
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(risk_address_reputation)).scalar() == 0


def test_typed_usernames_are_stored_as_keyed_fingerprints_only(db: Database) -> None:
    harness = Harness(db)
    typed = "Correct-Horse-Battery-Staple"  # a password typed in the username field
    harness.attempt(username=typed, user_id=None, ip=SAO_PAULO, at=T0, outcome="failure")
    with db.read() as conn:
        row = conn.execute(select(risk_events)).one()
    assert typed.casefold() not in str(row._mapping).casefold()
    assert row.username_key == username_key(SEALER, typed) == username_key(SEALER, typed.upper())
    assert len(row.username_key) == 64


def test_recorded_attempts_carry_the_decision_for_audit_and_the_admin_view(db: Database) -> None:
    harness = Harness(db)
    alice = make_user(db, "alice")
    harness.settle(alice, days=3)
    harness.attempt(
        username="alice", user_id=alice, ip=SYDNEY, at=T0 + timedelta(minutes=5),
        outcome="denied",
    )  # fmt: skip
    harness.attempt(username="alice", user_id=alice, ip=LAN, at=T0, outcome="failure")
    with db.read() as conn:
        flagged = recent_flagged(conn, tenant_id="tnt_test")
        other_tenant = recent_flagged(conn, tenant_id="tnt_other")
        local = conn.execute(select(risk_events).where(risk_events.c.ip == LAN)).one()
    assert other_tenant == []
    (event_,) = flagged
    assert (event_.outcome, event_.level, event_.country) == ("denied", "medium", "AU")
    assert [r["reason"] for r in event_.reasons] == ["device_unknown", "country_new"]
    assert all(set(r) >= {"reason", "weight"} for r in event_.reasons)
    assert (local.country, local.latitude, local.radius_km) == (None, None, None)
    assert LOCAL.local


def test_record_login_refuses_an_unknown_outcome(db: Database) -> None:
    with db.begin() as conn, pytest.raises(ValueError, match="unknown login outcome"):
        record_login(
            conn, at=T0, outcome="maybe", tenant_id=None, user_id=None, username_key=None,
            ip=None, location=LOCAL, decision=None, policy=DEFAULT_RISK_POLICY,
        )  # fmt: skip


# -- remembered devices ------------------------------------------------------------------


def test_a_remembered_device_is_stored_hashed_expires_and_revokes(db: Database) -> None:
    alice = make_user(db, "alice")
    bob = make_user(db, "bob")
    policy = RiskPolicy.from_document({"devices": {"ttl_days": 7}})
    with db.begin() as conn:
        record, credential = remember_device(
            conn, user_id=alice, name="  ", ip=PARIS, now=T0, policy=policy
        )
    assert credential.startswith("bst_dev_")
    assert record.name == "device"
    assert record.expires_at == T0 + timedelta(days=7)
    with db.read() as conn:
        stored = conn.execute(select(risk_devices)).one()
        found = find_device(conn, device_credential_hash(credential) or "")
    assert credential not in str(stored._mapping)
    assert found == record
    assert device_state(presented=True, record=found, user_id=alice, now=T0) is (
        DeviceState.RECOGNISED
    )
    assert (
        device_state(presented=True, record=found, user_id=alice, now=T0 + timedelta(days=7))
        is DeviceState.UNKNOWN
    )
    with db.begin() as conn:
        assert revoke_device(conn, user_id=bob, device_id=record.id, now=T0) == 0  # not his
        assert revoke_device(conn, user_id=alice, device_id=record.id, now=T0) == 1
        assert revoke_device(conn, user_id=alice, device_id=record.id, now=T0) == 0
    with db.read() as conn:
        (listed,) = list_devices(conn, user_id=alice)
    assert listed.revoked_at == T0
    assert device_state(presented=True, record=listed, user_id=alice, now=T0) is (
        DeviceState.REVOKED
    )


@pytest.mark.parametrize(
    "presented", ["", "bst_dev_short", "bst_sk_" + "A" * 43, "bst_dev_" + "!" * 43, "x" * 9000]
)
def test_a_malformed_device_credential_is_no_credential(presented: str) -> None:
    assert device_credential_hash(presented) is None


def test_revoking_all_devices_of_a_user(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.begin() as conn:
        for name in ("laptop", "phone"):
            remember_device(
                conn, user_id=alice, name=name, ip=None, now=T0, policy=DEFAULT_RISK_POLICY
            )
        assert revoke_device(conn, user_id=alice, device_id=None, now=T0) == 2


# -- usage and baselines ------------------------------------------------------------------


def test_usage_adds_up_per_hour_and_keeps_the_busiest_minute(db: Database) -> None:
    hour = T0.replace(minute=0)
    with db.begin() as conn:
        save_usage(conn, {("usr_a", "scroll", hour): [100, 60]})
        save_usage(conn, {("usr_a", "scroll", hour): [50, 40]})
        save_usage(conn, {("usr_a", "scroll", hour): [500, 500]})
    with db.read() as conn:
        row = conn.execute(select(risk_usage)).one()
    assert (row.total, row.peak_minute) == (650, 500)


def test_baselines_are_the_median_busiest_minute_of_enough_active_hours(db: Database) -> None:
    rows = {}
    for n, peak in enumerate([100, 200, 300, 10_000]):  # one past burst does not move it
        rows[("usr_a", "query", T0 - timedelta(hours=n + 1))] = [peak, peak]
    rows[("usr_b", "query", T0 - timedelta(hours=1))] = [5, 5]  # too little history
    rows[("usr_a", "query", T0 - timedelta(days=30))] = [1, 1]  # outside baseline_days
    with db.begin() as conn:
        save_usage(conn, rows)
    with db.read() as conn:
        found = load_baselines(
            conn, principal_ids=["usr_a", "usr_b"], now=T0, policy=DEFAULT_RISK_POLICY
        )
    assert found == {("usr_a", "query"): 250.0}


def test_prune_forgets_what_is_older_than_the_retention(db: Database) -> None:
    harness = Harness(db)
    alice = make_user(db, "alice")
    old = T0 - timedelta(days=100)
    harness.attempt(username="x", user_id=None, ip=SAO_PAULO, at=old, outcome="failure")
    harness.attempt(username="alice", user_id=alice, ip=PARIS, at=T0, outcome="success")
    with db.begin() as conn:
        remember_device(
            conn,  # it expired 100 days ago: beyond the 90 days kept
            user_id=alice,
            name="old",
            ip=None,
            now=old - timedelta(days=30),
            policy=DEFAULT_RISK_POLICY,
        )
        save_usage(conn, {("usr_a", "query", old): [1, 1]})
        prune(conn, now=T0)
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(risk_events)).scalar() == 1
        for table in (risk_address_reputation, risk_devices, risk_usage):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0


def test_a_login_finished_by_another_request_records_from_the_saved_context(
    db: Database,
) -> None:
    harness = Harness(db)
    alice = make_user(db, "alice")
    laptop = harness.remember(alice, at=T0 - timedelta(days=1))
    harness.settle(alice, days=3)
    risk = harness.assess(username="alice", user_id=alice, ip=SYDNEY, at=T0, device=laptop)
    context = json.loads(json.dumps(risk.as_context()))  # as a transaction's JSON keeps it
    assert RiskDecision.from_record(context["decision"]) == risk.decision
    later = T0 + timedelta(minutes=2)
    with db.begin() as conn:
        record_login_outcome(
            conn, context, outcome="success", tenant_id="tnt_test", policy=harness.policy,
            now=later,
        )  # fmt: skip
    with db.read() as conn:
        row = conn.execute(select(risk_events).where(risk_events.c.at == later)).one()
        device = find_device(conn, device_credential_hash(laptop) or "")
    assert (row.outcome, row.principal_id, row.ip, row.country) == ("success", alice, SYDNEY, "AU")
    assert row.device_id == risk.decision.device_id
    assert row.reasons == risk.decision.audit_details()["risk_reasons"]
    assert device is not None
    assert device.last_used_at == later
    assert device.last_ip == SYDNEY


VALID_RECORD = RiskDecision("login", 0, Outcome.ALLOW, (), LOCAL).as_record()


@pytest.mark.parametrize(
    "changes",
    [
        {"context": "other"},
        {"outcome": "maybe"},
        {"reasons": [{"reason": "country_new", "weight": 25}]},  # no floor
        {"location": ["FR", 1.0]},
        {"score": None},
    ],
)
def test_a_record_that_is_not_a_decision_is_refused(changes: dict[str, Any]) -> None:
    assert RiskDecision.from_record(VALID_RECORD).outcome is Outcome.ALLOW
    with pytest.raises((KeyError, ValueError, TypeError)):
        RiskDecision.from_record({**VALID_RECORD, **changes})


def test_a_spraying_address_is_told_to_wait_except_a_trusted_network(db: Database) -> None:
    policy = RiskPolicy.from_document({"networks": {"trusted": ["200.160.0.0/24"]}})
    for harness, expected in ((Harness(db), 3600), (Harness(db, policy), None)):
        for n in range(10):
            harness.attempt(username=f"u{n}", user_id=None, ip=SAO_PAULO, at=T0, outcome="failure")
        risk = harness.assess(username="next", user_id=None, ip=SAO_PAULO, at=T0)
        assert risk.decision.has("address_spraying")
        assert risk.spraying_retry_after == expected
    calm = Harness(db).assess(username="next", user_id=None, ip=PARIS, at=T0)
    assert calm.spraying_retry_after is None


def test_migration_0007_is_additive_and_downgrades_cleanly(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from bastion.storage.db import MIGRATIONS

    database = Database(f"sqlite:///{tmp_path / 'bastion.db'}")

    def alembic(action: str, revision: str) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)

    risk_tables = {"risk_events", "risk_devices", "risk_address_reputation", "risk_usage"}
    alembic("upgrade", "0006")
    before = set(inspect(database.engine).get_table_names())
    assert not before & risk_tables
    alembic("upgrade", "0007")  # its own revision (later ones add more)
    assert set(inspect(database.engine).get_table_names()) == before | risk_tables
    alembic("downgrade", "0006")
    assert set(inspect(database.engine).get_table_names()) == before
    database.dispose()
