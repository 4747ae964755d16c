"""Replicas started together on one empty PostgreSQL database (issue 17).

Migrations and the first start's bootstrap run once, under an advisory lock: two real
``bastion serve`` processes started at the same moment leave one schema, one admin and
one audit chain, and neither prints a secret (the admin's password or its argon2 hash,
the master key) even when something fails. Without a bootstrap password each prints a
setup link, the one that took the lock last the only live one, usable through any replica.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from bastion.audit import verify_chain
from bastion.clock import SystemClock
from bastion.identity.tenants import ensure_default_tenant
from bastion.storage import Database
from bastion.storage.schema import audit_events, setup_tokens, users
from bastion.tokens import parse_secret
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


def test_replicas_started_together_without_a_password_leave_one_live_setup_link(
    pgvector_url: str, tmp_path: Path
) -> None:
    """Each replica that starts while no user exists prints a setup link that replaces
    the earlier ones; started together they take the start-up lock in turn, so the link
    of the last one is the live one. It is made with the public URL (the load balancer's)
    and works through any replica; a replaced link is refused before any admin exists."""
    url = fresh_database(pgvector_url)
    key = new_master_key()
    servers = [replica(tmp_path, name, url, key) for name in ("a", "b")]
    for server in servers:
        del server.env["BASTION_BOOTSTRAP_ADMIN_PASSWORD"]
    with running(servers):
        links = {}
        for server in servers:
            printed = re.findall(r"http://bastion\.test/setup#(\S+)", server.log())
            assert len(printed) == 1, server.log()
            links[server.url] = printed[0]
            assert "It replaces any setup link printed before" in server.log()
        db = Database(url)
        try:
            with db.read() as conn:
                live_hashes = (
                    conn.execute(
                        select(setup_tokens.c.token_hash).where(setup_tokens.c.used_at.is_(None))
                    )
                    .scalars()
                    .all()
                )
        finally:
            db.dispose()
        assert len(live_hashes) == 1
        live = [
            printer for printer, link in links.items() if parse_secret(link, "setup") in live_hashes
        ]
        assert len(live) == 1
        stale = next(printer for printer in links if printer not in live)
        claim = {"username": "first-admin", "password": ADMIN_PASSWORD}
        # Each link opened through the other replica, as a load balancer may send it.
        refused = httpx.post(f"{live[0]}/setup", json={**claim, "token": links[stale]})
        assert refused.status_code == 401, refused.text
        made = httpx.post(f"{stale}/setup", json={**claim, "token": links[live[0]]})
        assert made.status_code == 201, made.text
        db = Database(url)
        try:
            with db.read() as conn:
                names = conn.execute(select(users.c.username)).scalars().all()
                report = verify_chain(conn)
        finally:
            db.dispose()
    assert names == ["first-admin"]
    assert report.ok, report.problem


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
