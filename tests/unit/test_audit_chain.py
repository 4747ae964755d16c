"""The audit log: typed events without secrets, the hash chain, query, export, checkpoints."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from tests.support.audit import audit_database

from bastion.audit import (
    EVENTS,
    GENESIS_HASH,
    AuditEvent,
    InvalidAuditEvent,
    canonical_json,
    chain_record,
    checkpoint_message,
    decision_event,
    emit,
    export_ndjson,
    format_timestamp,
    latest_checkpoint,
    link_hash,
    query,
    redact,
    safe_text,
    secret_looking_key,
    verify_chain,
    write_checkpoint,
)
from bastion.authz import DEFAULT_POLICY, Resource, decide
from bastion.domain.principal import Grant, Principal
from bastion.errors import ValidationError
from bastion.storage import Database
from bastion.storage.schema import audit_checkpoints, audit_events

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = audit_database(tmp_path / "t.db", created_at=T0)
    yield database
    database.dispose()


class LocalKeys:
    """A small Ed25519 signer/verifier standing in for the token key ring."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()

    def sign(self, data: bytes) -> tuple[str, bytes]:
        return "kid-1", self.key.sign(data)

    def verify(self, kid: str, data: bytes, signature: bytes) -> None:
        if kid != "kid-1":
            raise LookupError("unknown kid")
        self.key.public_key().verify(signature, data)


def login(n: int, *, tenant: str = "tnt_a", outcome: str = "success") -> AuditEvent:
    action = "login.success" if outcome == "success" else "login.failure"
    return AuditEvent(action, outcome, f"usr_{n}", tenant, f"user:usr_{n}",
                      None if outcome == "success" else "invalid_code",
                      {"username": f"user{n}"})  # fmt: skip


def fill(db: Database, count: int, *, start: datetime = T0) -> list[str]:
    ids = []
    with db.begin() as conn:
        for n in range(count):
            ids.append(emit(conn, login(n), now=start + timedelta(seconds=n)))
    return ids


# -- chain (pure) -----------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8() -> None:
    value = {"b": [1, "é"], "a": {"d": None, "c": True}, "t": T0}
    assert canonical_json(value) == (
        '{"a":{"c":true,"d":null},"b":[1,"é"],"t":"2026-03-01T12:00:00.123456Z"}'.encode()
    )
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"x": float("nan")})


def test_timestamps_are_utc_with_microseconds() -> None:
    plus_two = datetime(2026, 3, 1, 14, 0, tzinfo=UTC).astimezone(
        datetime.now(UTC).astimezone().tzinfo
    )
    assert format_timestamp(plus_two) == "2026-03-01T14:00:00.000000Z"
    with pytest.raises(ValueError, match="naive"):
        format_timestamp(datetime(2026, 1, 1))


def test_link_hash_is_sha256_over_the_canonical_record() -> None:
    record = chain_record(
        seq=1, id="evt_1", at=T0, tenant_id=None, actor=None, action="tenant.created",
        outcome="success", resource=None, reason=None, details={"name": "x"},
    )  # fmt: skip
    body = {"v": 1, "prev_hash": GENESIS_HASH, **record}
    expected = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert link_hash(GENESIS_HASH, record) == expected
    assert link_hash("1" * 64, record) != expected
    assert link_hash(GENESIS_HASH, {**record, "seq": 2}) != expected
    with pytest.raises(ValueError, match="RECORD_FIELDS"):
        link_hash(GENESIS_HASH, {**record, "extra": 1})


def test_checkpoint_message_is_domain_separated() -> None:
    assert checkpoint_message(7, "ab" * 32) == b"bastion-audit-checkpoint:7:" + b"ab" * 32


# -- events -----------------------------------------------------------------------------


def test_every_registered_action_is_well_formed() -> None:
    for action, spec in EVENTS.items():
        assert spec.outcomes <= {"success", "failure", "denied", "challenge"}, action
        assert not any(secret_looking_key(key) for key in spec.details), action
    for needed in ("login.success", "login.failure", "factor.enrolled", "recovery_code.used",
                   "token.refresh_reuse_detected", "authz.denied", "step_up.challenged",
                   "api_key.created", "user.suspended", "policy.updated", "points.searched",
                   "audit.exported", "audit.verified"):  # fmt: skip
        assert needed in EVENTS


@pytest.mark.parametrize(
    ("key", "secret"),
    [("password", True), ("new_password", True), ("api_key", True), ("recovery_codes", True),
     ("totp_seed", True), ("client_secret", True), ("refresh_token", True), ("otp", True),
     ("key_id", False), ("token_id", False), ("factor_type", False), ("username", False),
     ("count", False), ("session_id", False), ("remaining", False)],
)  # fmt: skip
def test_secret_looking_keys(key: str, secret: bool) -> None:
    assert secret_looking_key(key) is secret


def test_unregistered_action_outcome_and_details_refused() -> None:
    with pytest.raises(InvalidAuditEvent, match="unregistered audit action"):
        AuditEvent("login.teleported", "success", None, None)
    with pytest.raises(InvalidAuditEvent, match="outcome"):
        AuditEvent("login.success", "denied", "usr_1", "tnt_a")
    with pytest.raises(InvalidAuditEvent, match="unregistered detail keys"):
        AuditEvent("login.success", "success", "usr_1", "tnt_a", details={"shoe_size": 44})
    with pytest.raises(InvalidAuditEvent, match="snake_case"):
        AuditEvent("login.failure", "failure", None, None, reason="The password was hunter2")
    with pytest.raises(InvalidAuditEvent, match="not JSON"):
        AuditEvent("points.upserted", "success", "usr_1", "tnt_a", details={"count": object()})


@pytest.mark.parametrize(
    "value",
    [
        "bst_sk_Zx8c0m1y2n3b4v5c6x7z8a9s0d1f2g3h4j5k6l7",
        "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c3JfMSJ9.c2ln",
        "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        "-----BEGIN PRIVATE KEY-----",
        "otpauth://totp/Bastion:alice?secret=JBSWY3DPEHPK3PXP",
    ],
)
def test_secret_looking_values_redacted_anywhere(value: str) -> None:
    """What a caller chose never makes an event fail (issue 11, "audit evasion by name"):
    secret-looking text is replaced, wherever it is, and the event is kept."""
    for where in (
        {"details": {"username": value}},
        {"details": {"username": ["ok", {"nested": value}]}},
        {"resource": value},
        {"actor": value[:128]},
    ):
        event = AuditEvent(
            "login.failure", "failure", **{"actor": None, "tenant_id": None, **where}
        )  # type: ignore[arg-type]
        shown = str(event)
        assert value[:40] not in shown
        assert "[redacted sha256:" in shown


def test_redaction_keeps_the_kind_and_tells_values_apart() -> None:
    one = AuditEvent("collection.created", "success", "usr_1", "tnt_a", "collection:bst_one")
    two = AuditEvent("collection.created", "success", "usr_1", "tnt_a", "collection:bst_two")
    assert one.resource is not None
    assert one.resource.startswith("collection:[redacted sha256:")
    assert one.resource != two.resource
    assert redact("docs") == "docs"


def test_overlong_caller_text_is_cut_not_refused() -> None:
    resource = "collection:" + "n" * 255
    event = AuditEvent("collection.created", "success", "usr_1", "tnt_a", resource)
    assert event.resource is not None
    assert len(event.resource) == 256
    assert event.resource.startswith("collection:nnn")
    assert "[sha256:" in event.resource
    huge = AuditEvent("index.created", "success", "usr_1", "tnt_a", "collection:docs",
                      details={"collection": "docs", "field": "f" * 20_000})  # fmt: skip
    assert dict(huge.details) == {"truncated": True}
    odd = AuditEvent("collection.created", "success", "usr_1", "tnt_a", "collection:\ud800x")
    assert odd.resource == "collection:?x"


def test_secret_named_nested_key_refused() -> None:
    with pytest.raises(InvalidAuditEvent, match="names secret material"):
        AuditEvent("user.updated", "success", "usr_1", "tnt_a",
                   details={"before": {"password_hash": "x"}})  # fmt: skip


def test_safe_text_redacts_without_a_hash() -> None:
    assert safe_text("alice") == "alice"
    assert safe_text("bst_sk_abcdefgh") == "[redacted]"
    assert safe_text("x" * 500) == "x" * 128
    event = AuditEvent("login.failure", "failure", None, "tnt_a", reason="invalid_credentials",
                       details={"username": safe_text("eyJhbGciOiJ9.eyJzdWIi.c2")})  # fmt: skip
    assert event.details["username"] == "[redacted]"


def test_event_details_are_a_frozen_json_copy() -> None:
    source = {"collection": "docs", "count": 3}
    event = AuditEvent("points.upserted", "success", "usr_1", "tnt_a", "collection:docs",
                       details=source)  # fmt: skip
    source["count"] = 99
    assert event.details["count"] == 3
    with pytest.raises(TypeError):
        event.details["count"] = 4  # type: ignore[index]


def test_decision_events() -> None:
    alice = Principal("user", "usr_1", "alice", "tnt_a", "default",
                      (Grant("developer", "tnt_a"),), "aal1", auth_time=T0)  # fmt: skip
    step_up = decide(alice, "points.write", Resource("tnt_a", "docs"), policy=DEFAULT_POLICY,
                     now=T0)  # fmt: skip
    event = decision_event(alice, step_up, resource="collection:docs")
    assert event is not None
    assert (event.action, event.outcome, event.reason) == (
        "step_up.challenged", "challenge", "insufficient_acr",
    )  # fmt: skip
    assert event.details["required_acr"] == "aal2"
    denied = decide(alice, "users.manage", Resource("tnt_a"), policy=DEFAULT_POLICY, now=T0)
    event = decision_event(alice, denied)
    assert event is not None
    assert (event.action, event.reason, event.details["permission"]) == (
        "authz.denied", "missing_permission", "users.manage",
    )  # fmt: skip
    allowed = decide(alice, "points.read", Resource("tnt_a", "docs"), policy=DEFAULT_POLICY, now=T0)
    assert decision_event(alice, allowed) is None


# -- emit / query / export --------------------------------------------------------------


def test_emit_links_each_event_to_the_previous_one(db: Database) -> None:
    ids = fill(db, 3)
    with db.read() as conn:
        rows = conn.execute(select(audit_events).order_by(audit_events.c.seq)).all()
    assert [row.id for row in rows] == ids
    assert [row.seq for row in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS_HASH
    assert rows[1].prev_hash == rows[0].hash
    assert rows[2].prev_hash == rows[1].hash
    assert rows[0].at == T0  # microseconds survive the round trip


def test_emit_rolls_back_with_the_caller(db: Database) -> None:
    fill(db, 2)

    def failing_change() -> None:
        with db.begin() as conn:
            emit(conn, login(9), now=T0)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError, match="the change failed"):
        failing_change()
    fill(db, 1)
    with db.read() as conn:
        seqs = conn.execute(select(audit_events.c.seq).order_by(audit_events.c.seq)).scalars()
        assert list(seqs) == [1, 2, 3]
        assert verify_chain(conn).ok


def test_concurrent_writers_keep_one_chain(db: Database) -> None:
    def writer(worker: int) -> None:
        for n in range(15):
            with db.begin() as conn:
                emit(conn, login(worker * 100 + n), now=T0)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db.read() as conn:
        report = verify_chain(conn)
    assert report.ok, report.problem
    assert report.events == 60


def test_emit_refuses_naive_time(db: Database) -> None:
    with db.begin() as conn, pytest.raises(ValueError, match="naive"):
        emit(conn, login(1), now=datetime(2026, 1, 1))


def test_query_filters_and_pages(db: Database) -> None:
    with db.begin() as conn:
        for n in range(10):
            tenant = "tnt_a" if n % 2 == 0 else "tnt_b"
            outcome = "success" if n < 7 else "failure"
            emit(conn, login(n, tenant=tenant, outcome=outcome), now=T0 + timedelta(minutes=n))
    with db.read() as conn:
        everything = query(conn, tenant_id=None, limit=1000)
        assert [e.seq for e in everything.events] == list(range(1, 11))
        assert everything.next_after_seq is None
        mine = query(conn, tenant_id="tnt_a")
        assert {e.tenant_id for e in mine.events} == {"tnt_a"}
        assert len(mine.events) == 5
        assert [e.seq for e in query(conn, tenant_id=None, actor="usr_3").events] == [4]
        assert len(query(conn, tenant_id=None, action="login.failure").events) == 3
        assert len(query(conn, tenant_id=None, outcome="failure").events) == 3
        assert [e.seq for e in query(conn, tenant_id=None, resource="user:usr_0").events] == [1]
        window = query(
            conn, tenant_id=None, since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5)
        )
        assert [e.seq for e in window.events] == [3, 4, 5]
        first = query(conn, tenant_id=None, limit=4)
        assert [e.seq for e in first.events] == [1, 2, 3, 4]
        assert first.next_after_seq == 4
        second = query(conn, tenant_id=None, limit=4, after_seq=first.next_after_seq)
        assert [e.seq for e in second.events] == [5, 6, 7, 8]
        last = query(conn, tenant_id=None, limit=4, after_seq=second.next_after_seq)
        assert ([e.seq for e in last.events], last.next_after_seq) == ([9, 10], None)
        newest = query(conn, tenant_id=None, limit=3, newest_first=True)
        assert [e.seq for e in newest.events] == [10, 9, 8]
        older = query(conn, tenant_id=None, limit=3, newest_first=True, after_seq=8)
        assert [e.seq for e in older.events] == [7, 6, 5]


@pytest.mark.parametrize("limit", [0, 1001, -5])
def test_query_limit_is_bounded(db: Database, limit: int) -> None:
    with db.read() as conn, pytest.raises(ValidationError, match="limit"):
        query(conn, tenant_id=None, limit=limit)


def test_query_refuses_naive_time_filters(db: Database) -> None:
    with db.read() as conn, pytest.raises(ValidationError, match="time zone"):
        query(conn, tenant_id=None, since=datetime(2026, 1, 1))


def test_export_streams_ndjson_with_hashes(db: Database) -> None:
    fill(db, 7)
    with db.read() as conn:
        lines = list(export_ndjson(conn, tenant_id="tnt_a", batch_size=3))
    assert len(lines) == 7
    assert all(line.endswith(b"\n") for line in lines)
    first = json.loads(lines[0])
    assert first["seq"] == 1
    assert first["prev_hash"] == GENESIS_HASH
    assert first["at"] == "2026-03-01T12:00:00.123456Z"
    assert first["details"] == {"username": "user0"}
    # An export can be re-verified offline link by link.
    prev = GENESIS_HASH
    for line in lines:
        item = json.loads(line)
        record = {k: item[k] for k in item if k not in ("prev_hash", "hash")}
        assert item["prev_hash"] == prev
        assert link_hash(prev, record) == item["hash"]
        prev = item["hash"]


def test_no_update_or_delete_function_exists() -> None:
    import bastion.audit as audit

    names = {name.lower() for name in dir(audit)}
    assert not {n for n in names if any(w in n for w in ("update", "delete", "remove", "edit"))}


# -- verify and checkpoints -------------------------------------------------------------


def test_verify_intact_chain_in_small_batches(db: Database) -> None:
    fill(db, 25)
    with db.read() as conn:
        report = verify_chain(conn, batch_size=4)
    assert report.ok
    assert (report.events, report.first_broken_seq, report.problem) == (25, None, None)
    assert report.head_seq == 25
    assert report.to_json() == {
        "ok": True, "events": 25, "checkpoints_checked": 0, "signatures_verified": False,
    }  # fmt: skip


def test_verify_empty_log(db: Database) -> None:
    with db.read() as conn:
        report = verify_chain(conn)
    assert (report.ok, report.events, report.head_seq) == (True, 0, None)


def test_checkpoint_signs_the_head(db: Database) -> None:
    keys = LocalKeys()
    with db.begin() as conn:
        assert write_checkpoint(conn, signer=keys.sign, now=T0) is None  # empty log
    fill(db, 5)
    with db.begin() as conn:
        checkpoint = write_checkpoint(conn, signer=keys.sign, now=T0)
        assert checkpoint is not None
        assert checkpoint.seq == 5
        keys.verify(checkpoint.kid, checkpoint_message(5, checkpoint.hash), checkpoint.signature)
        assert write_checkpoint(conn, signer=keys.sign, now=T0) is None  # nothing new
    fill(db, 3)
    with db.begin() as conn:
        second = write_checkpoint(conn, signer=keys.sign, now=T0, verifier=keys.verify)
        assert second is not None
        assert second.seq == 8
        assert latest_checkpoint(conn) == second
    with db.read() as conn:
        report = verify_chain(conn, verifier=keys.verify, batch_size=3)
        assert report.ok, report.problem
        assert (report.checkpoints_checked, report.signatures_verified) == (2, True)
        assert conn.execute(select(func.count()).select_from(audit_checkpoints)).scalar_one() == 2


def test_checkpoint_with_another_key_is_reported(db: Database) -> None:
    fill(db, 4)
    with db.begin() as conn:
        write_checkpoint(conn, signer=LocalKeys().sign, now=T0)
    with db.read() as conn:
        report = verify_chain(conn, verifier=LocalKeys().verify)
    assert not report.ok
    assert report.first_broken_seq == 4
    assert "invalid signature" in (report.problem or "")
