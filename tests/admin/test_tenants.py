"""Tenants: installation admins create and list them; tenant admins never see another tenant."""

from __future__ import annotations

from typing import Any
from unittest.mock import ANY

from tests.admin.helpers import Minted, events, mint, problem
from tests.support.app import Env


def test_create_and_list_tenants(env: Env) -> None:
    root = mint(env)
    created = env.client.post("/admin/tenants", headers=root.auth, json={"name": "acme"})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "acme"
    problem(
        env.client.post("/admin/tenants", headers=root.auth, json={"name": "acme"}),
        409,
        "tenant_exists",
    )
    problem(
        env.client.post("/admin/tenants", headers=root.auth, json={"name": "Bad Name"}),
        422,
        "validation_error",
    )
    listed = env.client.get("/admin/tenants", headers=root.auth).json()["tenants"]
    assert [t["name"] for t in listed] == ["acme", "default"]
    [event] = events(env, root, action="tenant.created")
    assert event["details"] == {"name": "acme", "request_id": ANY}
    assert event["tenant_id"] == created.json()["id"]


def test_tenant_admins_cannot_manage_tenants(env: Env) -> None:
    root = mint(env)
    env.client.post("/admin/tenants", headers=root.auth, json={"name": "acme"})
    local = mint(env, tenant="acme")
    body = problem(env.client.get("/admin/tenants", headers=local.auth), 403, "forbidden")
    assert body["reason"] == "installation_only"
    problem(
        env.client.post("/admin/tenants", headers=local.auth, json={"name": "evil"}),
        403,
        "forbidden",
    )


def _setup_two_tenants(env: Env) -> tuple[Minted, Minted, dict[str, Any]]:
    root = mint(env)
    for name in ("ta", "tb"):
        assert (
            env.client.post("/admin/tenants", headers=root.auth, json={"name": name}).status_code
            == 201
        )
    admin_a = mint(env, tenant="ta")
    admin_b = mint(env, tenant="tb")
    user_a = env.client.post(
        "/admin/users", headers=admin_a.auth, json={"username": "alice-a", "roles": ["viewer"]}
    ).json()
    account_a = env.client.post(
        "/admin/service-accounts", headers=admin_a.auth, json={"name": "ci", "roles": ["viewer"]}
    ).json()
    key_a = env.client.post(
        f"/admin/service-accounts/{account_a['id']}/keys", headers=admin_a.auth, json={}
    ).json()
    env.client.post(
        "/admin/roles",
        headers=admin_a.auth,
        json={"name": "reader", "permissions": ["points.read"]},
    )
    return admin_a, admin_b, {"user": user_a, "account": account_a, "key": key_a, "root": root}


def test_other_tenants_users_keys_and_audit_are_invisible(env: Env) -> None:
    admin_a, admin_b, a = _setup_two_tenants(env)
    user_id, account_id, key_id = a["user"]["id"], a["account"]["id"], a["key"]["id"]
    b = admin_b.auth
    # Users: 404, never 403, so ids of other tenants do not leak.
    problem(env.client.get(f"/admin/users/{user_id}", headers=b), 404, "user_not_found")
    problem(
        env.client.patch(f"/admin/users/{user_id}", headers=b, json={"status": "suspended"}),
        404,
        "user_not_found",
    )
    problem(env.client.delete(f"/admin/users/{user_id}", headers=b), 404, "user_not_found")
    problem(
        env.client.post(f"/admin/users/{user_id}/reset-factors", headers=b), 404, "user_not_found"
    )
    problem(env.client.get(f"/admin/users/{admin_a.user_id}", headers=b), 404, "user_not_found")
    listed = env.client.get("/admin/users", headers=b).json()["users"]
    assert {u["id"] for u in listed} == {admin_b.user_id}
    problem(
        env.client.get("/admin/users", headers=b, params={"tenant": "ta"}), 404, "tenant_not_found"
    )
    problem(
        env.client.post(
            "/admin/users", headers=b, json={"username": "x", "roles": [], "tenant": "ta"}
        ),
        404,
        "tenant_not_found",
    )
    # Service accounts and keys.
    missing = "service_account_not_found"
    problem(env.client.get(f"/admin/service-accounts/{account_id}", headers=b), 404, missing)
    problem(env.client.get(f"/admin/service-accounts/{account_id}/keys", headers=b), 404, missing)
    problem(
        env.client.post(f"/admin/service-accounts/{account_id}/keys", headers=b, json={}),
        404,
        missing,
    )
    problem(
        env.client.delete(f"/admin/service-accounts/{account_id}/keys/{key_id}", headers=b),
        404,
        missing,
    )
    problem(env.client.delete(f"/admin/service-accounts/{account_id}", headers=b), 404, missing)
    assert env.client.get("/admin/service-accounts", headers=b).json()["service_accounts"] == []
    # Roles and policy of the other tenant.
    roles = env.client.get("/admin/roles", headers=b).json()["roles"]
    assert "reader" not in {r["name"] for r in roles}
    problem(
        env.client.get("/admin/roles", headers=b, params={"tenant": "ta"}), 404, "tenant_not_found"
    )
    problem(
        env.client.get("/admin/policy", headers=b, params={"tenant": "ta"}), 404, "tenant_not_found"
    )
    problem(
        env.client.put("/admin/policy", headers=b, params={"tenant": "ta"}, json={}),
        404,
        "tenant_not_found",
    )
    # Audit: only tenant B's events.
    seen = events(env, admin_b, limit=1000)
    assert all(e["tenant_id"] == seen[0]["tenant_id"] for e in seen)
    assert user_id not in str(seen)
    assert account_id not in str(seen)
    problem(
        env.client.get("/admin/audit", headers=b, params={"tenant": "ta"}), 404, "tenant_not_found"
    )
    # Nothing of tenant A changed, and A's key still works.
    assert (
        env.client.get(f"/admin/users/{user_id}", headers=admin_a.auth).json()["status"] == "active"
    )
    assert env.client.get("/collections", headers={"api-key": a["key"]["key"]}).status_code == 200


def test_installation_admin_administers_every_tenant(env: Env) -> None:
    admin_a, _, a = _setup_two_tenants(env)
    root = a["root"]
    user_id = a["user"]["id"]
    assert env.client.get(f"/admin/users/{user_id}", headers=root.auth).json()["tenant"] == "ta"
    everyone = {u["id"] for u in env.client.get("/admin/users", headers=root.auth).json()["users"]}
    assert {user_id, admin_a.user_id, root.user_id} <= everyone
    only_a = env.client.get("/admin/users", headers=root.auth, params={"tenant": "ta"}).json()[
        "users"
    ]
    assert {u["id"] for u in only_a} == {user_id, admin_a.user_id}
    patched = env.client.patch(
        f"/admin/users/{user_id}", headers=root.auth, json={"roles": ["reader"]}
    )
    assert patched.status_code == 200, patched.text  # tenant A's custom role resolves
    all_events = events(env, root, limit=1000)
    assert len({e["tenant_id"] for e in all_events}) >= 2
    tenant_a = events(env, root, tenant="ta", limit=1000)
    assert tenant_a
    assert {e["tenant_id"] for e in tenant_a} == {tenant_a[0]["tenant_id"]}
