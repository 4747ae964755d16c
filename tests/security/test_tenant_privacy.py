"""Issue 11.13: a tenant's existence and size stay private to its own admins.

The attack found on the running server: an admin of one tenant learnt the usernames of
other tenants (``409 "User 'dev1' already exists."``: usernames are unique per
installation) and saw the installation's audit counts in ``/admin/audit/verify``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from tests.admin.helpers import mint, runtime_of
from tests.support.app import Env

from bastion.audit import query

PASSWORD = "a long passphrase 77"


def create_user(env: Env, auth: dict[str, str], username: str) -> Any:
    return env.client.post(
        "/admin/users",
        headers=auth,
        json={"username": username, "password": PASSWORD, "roles": ["viewer"]},
    )


def test_tenant_admin_cannot_learn_usernames_of_other_tenants(env: Env) -> None:
    globex = mint(env, role="admin", tenant="globex", acr="aal3")
    assert create_user(env, globex.auth, "dev1").status_code == 201
    acme = mint(env, role="admin", tenant="acme", acr="aal3")
    assert create_user(env, acme.auth, "own-user").status_code == 201

    theirs = create_user(env, acme.auth, "dev1")  # taken in globex
    mine = create_user(env, acme.auth, "own-user")  # taken in acme itself
    assert theirs.status_code == mine.status_code == 409
    assert theirs.json() == mine.json(), "the answer tells another tenant's user from one's own"
    assert theirs.json()["code"] == "username_unavailable"
    assert "dev1" not in theirs.text
    assert "exists" not in theirs.json()["detail"]
    # The probe is on the record, in the prober's own tenant only.
    with runtime_of(env).db.read() as conn:
        refused = [
            e
            for e in query(conn, tenant_id=None, action="user.created", limit=100).events
            if e.outcome == "failure"
        ]
    assert [e.actor for e in refused] == [acme.user_id, acme.user_id]
    assert {e.reason for e in refused} == {"username_unavailable"}
    acme_tenant = refused[0].tenant_id
    assert all(e.tenant_id == acme_tenant for e in refused)


def test_tenant_admin_sees_only_their_own_tenants_audit_counts(env: Env) -> None:
    installation = mint(env, role="admin", acr="aal3")
    for n in range(5):  # activity in the default tenant
        assert create_user(env, installation.auth, f"busy-{n}").status_code == 201
    acme = mint(env, role="admin", tenant="acme", acr="aal3")
    assert create_user(env, acme.auth, "acme-one").status_code == 201

    whole = env.client.get("/admin/audit/verify", headers=installation.auth).json()
    mine = env.client.get("/admin/audit/verify", headers=acme.auth).json()
    assert whole["ok"] is mine["ok"] is True
    with runtime_of(env).db.read() as conn:
        acme_id = conn.execute(text("SELECT id FROM tenants WHERE name = 'acme'")).scalar_one()
        own = conn.execute(
            text("SELECT count(*) FROM audit_events WHERE tenant_id = :t"), {"t": acme_id}
        ).scalar_one()
    assert mine["events"] == own - 1  # its own events, before this verification's own event
    assert mine["events"] < whole["events"]
    assert mine["scope"] == "tenant"
    assert "checkpoints_checked" not in mine  # their cadence follows the installation's activity
    # The verification's own audit event, which acme's admin can read, holds acme's count.
    events = env.client.get(
        "/admin/audit", headers=acme.auth, params={"action": "audit.verified"}
    ).json()["events"]
    assert events[0]["details"]["events"] == mine["events"]


def test_a_broken_chain_is_reported_to_a_tenant_admin_without_installation_positions(
    env: Env,
) -> None:
    acme = mint(env, role="admin", tenant="acme", acr="aal3")
    assert create_user(env, acme.auth, "acme-one").status_code == 201
    rt = runtime_of(env)
    with rt.db.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
        conn.execute(text("UPDATE audit_events SET outcome = 'failure' WHERE seq = 1"))
    try:
        broken = env.client.get("/admin/audit/verify", headers=acme.auth).json()
    finally:
        with rt.db.begin() as conn:  # undo, so that the shutdown checkpoint signs the chain
            conn.execute(text("UPDATE audit_events SET outcome = 'success' WHERE seq = 1"))
    assert broken["ok"] is False
    assert "first_broken_seq" not in broken
    assert "seq" not in broken["problem"]
    assert "event 1" not in broken["problem"]
