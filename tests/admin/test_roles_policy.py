"""``/admin/roles`` (custom roles) and ``/admin/policy`` (the MFA and assurance policy)."""

from __future__ import annotations

from unittest.mock import ANY

from tests.admin.helpers import events, mint, problem
from tests.support.app import Env


def test_custom_role_lifecycle(env: Env) -> None:
    admin = mint(env)
    created = env.client.post(
        "/admin/roles",
        headers=admin.auth,
        json={
            "name": "auditor",
            "description": "Reads the audit log",
            "permissions": ["audit.read"],
        },
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "name": "auditor",
        "description": "Reads the audit log",
        "permissions": ["audit.read"],
        "builtin": False,
    }
    problem(
        env.client.post(
            "/admin/roles",
            headers=admin.auth,
            json={"name": "auditor", "permissions": ["audit.read"]},
        ),
        409,
        "role_exists",
    )
    roles = {
        r["name"]: r for r in env.client.get("/admin/roles", headers=admin.auth).json()["roles"]
    }
    assert {"viewer", "developer", "admin", "auditor"} <= set(roles)
    assert roles["admin"]["builtin"] is True

    # The role works at once: a user holding it reads the audit log and nothing else.
    auditor = mint(env, role="auditor", acr="aal2")
    assert env.client.get("/admin/audit", headers=auditor.auth).status_code == 200
    problem(env.client.get("/admin/users", headers=auditor.auth), 403, "forbidden")

    problem(env.client.delete("/admin/roles/auditor", headers=admin.auth), 409, "role_in_use")
    env.client.patch(f"/admin/users/{auditor.user_id}", headers=admin.auth, json={"roles": []})
    assert env.client.delete("/admin/roles/auditor", headers=admin.auth).status_code == 204
    problem(env.client.delete("/admin/roles/auditor", headers=admin.auth), 404, "role_not_found")
    problem(env.client.delete("/admin/roles/admin", headers=admin.auth), 409, "role_builtin")

    [made] = events(env, admin, action="role.created")
    assert made["details"] == {
        "role": "auditor",
        "permissions": ["audit.read"],
        "request_id": ANY,
    }
    assert made["resource"] == "role:auditor"
    [gone] = events(env, admin, action="role.deleted")
    assert gone["details"] == {"role": "auditor", "request_id": ANY}


def test_custom_role_input_is_validated(env: Env) -> None:
    admin = mint(env)
    cases = [
        {"name": "x", "permissions": ["no.such"]},
        {"name": "x", "permissions": []},
        {"name": "x", "permissions": ["me.read"]},
        {"name": "Bad Name", "permissions": ["audit.read"]},
        {"name": "viewer", "permissions": ["audit.read"]},
        {"name": "bst_sk_x", "permissions": ["audit.read"]},
        {"name": "x", "permissions": "audit.read"},
        {"name": "x", "permissions": [1]},
        {"name": "x", "permissions": ["audit.read"], "extra": True},
    ]
    for body in cases:
        problem(
            env.client.post("/admin/roles", headers=admin.auth, json=body), 422, "validation_error"
        )
    unknown = env.client.post("/admin/roles", headers=admin.auth, json=cases[0]).json()
    assert "no.such" in unknown["detail"]


def test_policy_get_and_put(env: Env) -> None:
    admin = mint(env)
    document = env.client.get("/admin/policy", headers=admin.auth)
    assert document.status_code == 200
    policy = document.json()
    assert policy["mfa_required"] is True
    assert policy["actions"]["users.manage"] == {"acr": "aal2", "max_age": 300}
    policy["actions"]["points.write"] = {"acr": "aal3", "max_age": 600}
    policy["password_min_length"] = 12
    saved = env.client.put("/admin/policy", headers=admin.auth, json=policy)
    assert saved.status_code == 200, saved.text
    assert env.client.get("/admin/policy", headers=admin.auth).json() == saved.json()
    assert saved.json()["actions"]["points.write"] == {"acr": "aal3", "max_age": 600}

    [event] = events(env, admin, action="policy.updated")
    assert event["resource"] == "policy"
    assert sorted(event["details"]["changes"], key=lambda c: c["field"]) == [
        {
            "field": "actions.points.write",
            "before": {"acr": "aal2", "max_age": None},
            "after": {"acr": "aal3", "max_age": 600},
        },
        {"field": "password_min_length", "before": 8, "after": 12},
    ]

    # The new rule applies at once: an aal2 developer is now asked for aal3.
    developer = mint(env, role="developer", acr="aal2")
    response = env.client.put(
        "/collections/docs",
        headers=developer.auth,
        json={"vectors": {"size": 4, "distance": "Cosine"}},
    )
    assert response.status_code == 200, response.text  # collections.create unchanged
    upsert = env.client.put(
        "/collections/docs/points",
        headers=developer.auth,
        json={"points": [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4]}]},
    )
    assert upsert.status_code == 401
    assert 'acr_values="aal3"' in upsert.headers["www-authenticate"]


def test_invalid_policy_is_refused_with_the_reason(env: Env) -> None:
    admin = mint(env)
    cases = {
        "bogus": {"bogus": 1},
        "no.such": {"actions": {"no.such": {"acr": "aal1"}}},
        "aal2": {"actions": {"users.manage": {"acr": "aal1", "max_age": None}}},
        "mfa_required": {"mfa_required": "yes"},
        "password_min_length": {"mfa_required": False, "password_min_length": 8},
        "max_age": {"actions": {"points.write": {"acr": "aal2", "max_age": -5}}},
        "users.manage": {"service_account_actions": ["users.manage"]},
    }
    for needle, body in cases.items():
        response = env.client.put("/admin/policy", headers=admin.auth, json=body)
        detail = problem(response, 422, "validation_error")["detail"]
        assert needle in detail or needle.split(".")[0] in detail, (needle, detail)
    for raw in (b"[1, 2]", b"not json", b'"text"'):
        response = env.client.put(
            "/admin/policy", headers={**admin.auth, "content-type": "application/json"}, content=raw
        )
        problem(response, 422, "validation_error")
    assert events(env, admin, action="policy.updated") == []


def test_policy_needs_step_up_to_change(env: Env) -> None:
    reader = mint(env, acr="aal2", age=3600)
    assert env.client.get("/admin/policy", headers=reader.auth).status_code == 200
    response = env.client.put("/admin/policy", headers=reader.auth, json={})
    problem(response, 401, "insufficient_user_authentication")
