"""Replicas started together on one empty PostgreSQL database (issue 17).

Migrations and the first start's bootstrap run once, under an advisory lock: two real
``bastion serve`` processes started at the same moment leave one schema, one admin and
one audit chain, and neither prints a secret (the admin's password or its argon2 hash,
the master key) even when something fails.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from bastion.audit import verify_chain
from bastion.clock import SystemClock
from bastion.identity.tenants import ensure_default_tenant
from bastion.storage import Database
from bastion.storage.schema import audit_events, users
from tests.support.postgres import fresh_database
from tests.support.replicas import new_master_key, replica, running
from tests.support.server import ADMIN_PASSWORD


def _secrets_in(text: str, master_key: str) -> list[str]:
    found = [
        marker
        for marker in ("$argon2", ADMIN_PASSWORD, master_key, "Failing row")
        if marker in text
    ]
    return found


def test_two_replicas_started_together_bootstrap_once(postgres_url: str, tmp_path: Path) -> None:
    url = fresh_database(postgres_url)
    key = new_master_key()
    servers = [replica(tmp_path, name, url, key) for name in ("a", "b")]
    with running(servers):
        db = Database(url)
        try:
            with db.read() as conn:
                names = conn.execute(select(users.c.username)).scalars().all()
                created = conn.execute(
                    select(func.count())
                    .select_from(audit_events)
                    .where(audit_events.c.action == "user.created")
                ).scalar_one()
                report = verify_chain(conn)
        finally:
            db.dispose()
    assert names == ["admin"]
    assert created == 1
    assert report.ok, report.problem
    for server in servers:
        output = server.log()
        assert "Traceback" not in output, output
        assert _secrets_in(output, key) == [], output


def test_database_error_does_not_print_the_failing_row(postgres_url: str) -> None:
    """A NOT NULL violation's DETAIL prints the whole row (an argon2 hash with it): the
    error Bastion sees, and would log, keeps the constraint and loses the row."""
    db = Database(fresh_database(postgres_url))
    db.migrate()
    try:
        with pytest.raises(IntegrityError) as caught, db.begin() as conn:
            conn.execute(
                insert(users).values(
                    id="usr_x", tenant_id=None, username="admin", password_hash="$argon2id$v=19$x"
                )
            )
        shown = str(caught.value)
        assert "$argon2" not in shown
        assert "Failing row" not in shown
        assert "23502" in shown  # not_null_violation: what failed is still said
        orig = caught.value.__cause__
        assert isinstance(orig, psycopg.errors.NotNullViolation)
        assert "$argon2" not in str(orig)
        assert orig.diag.column_name == "tenant_id"  # code can still handle it
    finally:
        db.dispose()


def test_unique_violation_does_not_print_the_key(postgres_url: str) -> None:
    """A unique violation's DETAIL names the key: a token's hash must not reach a log."""
    db = Database(fresh_database(postgres_url))
    db.migrate()
    now = SystemClock().now()
    try:
        with db.begin() as conn:
            tenant = ensure_default_tenant(conn, now=now)
        row = {"tenant_id": tenant.id, "username": "secretname", "status": "active"}
        row |= {"created_at": now, "updated_at": now}
        with db.begin() as conn:
            conn.execute(insert(users).values(id="usr_a", **row))
        with pytest.raises(IntegrityError) as caught, db.begin() as conn:
            conn.execute(insert(users).values(id="usr_b", **row))
        assert "secretname" not in str(caught.value)
        assert "23505" in str(caught.value)
    finally:
        db.dispose()
