"""The rules of administration: last admin, no granting beyond one's own roles, step-up."""

from __future__ import annotations

from sqlalchemy import select

from bastion.storage.schema import users
from tests.admin.helpers import Minted, events, mint, problem, runtime_of
from tests.http.webauthn_helpers import register_key
from tests.support.app import Env
from tests.support.authenticator import SoftAuthenticator


def bootstrap_admin_id(env: Env) -> str:
    with runtime_of(env).db.read() as conn:
        row = conn.execute(select(users.c.id).where(users.c.username == "admin")).one()
    return str(row.id)


def tenant_with_admin(env: Env, root: Minted, tenant: str) -> Minted:
    assert (
        env.client.post("/admin/tenants", headers=root.auth, json={"name": tenant}).status_code
        == 201
    )
    return mint(env, tenant=tenant)


def test_last_admin_of_a_tenant_cannot_lose_admin(env: Env) -> None:
    root = mint(env)
    solo = tenant_with_admin(env, root, "acme")
    for change in ({"roles": ["viewer"]}, {"roles": []}, {"status": "suspended"}):
        response = env.client.patch(f"/admin/users/{solo.user_id}", headers=solo.auth, json=change)
        problem(response, 409, "last_admin")
        # Also refused when an installation admin asks.
        response = env.client.patch(f"/admin/users/{solo.user_id}", headers=root.auth, json=change)
        problem(response, 409, "last_admin")
    problem(env.client.delete(f"/admin/users/{solo.user_id}", headers=solo.auth), 409, "last_admin")
    assert env.client.get("/me", headers=solo.auth).status_code == 200  # nothing changed

    refused = events(env, root, action="user.updated", outcome="failure")
    assert refused
    assert all(e["reason"] == "last_admin" for e in refused)

    second = mint(env, tenant="acme")
    demoted = env.client.patch(
        f"/admin/users/{solo.user_id}", headers=second.auth, json={"roles": ["viewer"]}
    )
    assert demoted.status_code == 200, demoted.text
    problem(
        env.client.delete(f"/admin/users/{second.user_id}", headers=second.auth), 409, "last_admin"
    )


def test_a_suspended_admin_does_not_count(env: Env) -> None:
    root = mint(env)
    first = tenant_with_admin(env, root, "acme")
    second = mint(env, tenant="acme")
    assert (
        env.client.patch(
            f"/admin/users/{second.user_id}", headers=first.auth, json={"status": "suspended"}
        ).status_code
        == 200
    )
    problem(
        env.client.patch(
            f"/admin/users/{first.user_id}", headers=root.auth, json={"roles": ["viewer"]}
        ),
        409,
        "last_admin",
    )


def test_last_installation_admin_is_protected_too(env: Env) -> None:
    root = mint(env)
    # Two admins in default: the bootstrap admin and root. Delete the bootstrap admin first.
    assert (
        env.client.delete(f"/admin/users/{bootstrap_admin_id(env)}", headers=root.auth).status_code
        == 204
    )
    problem(
        env.client.patch(
            f"/admin/users/{root.user_id}", headers=root.auth, json={"status": "suspended"}
        ),
        409,
        "last_admin",
    )


def test_cannot_grant_roles_beyond_ones_own(env: Env) -> None:
    root = mint(env)
    made = env.client.post(
        "/admin/roles",
        headers=root.auth,
        json={
            "name": "user-manager",
            "description": "manages users",
            "permissions": [
                "users.read",
                "users.manage",
                "collections.read",
                "points.read",
                "points.search",
            ],
        },
    )
    assert made.status_code == 201, made.text
    manager = mint(env, role="user-manager")
    viewer = env.client.post(
        "/admin/users", headers=manager.auth, json={"username": "v1", "roles": ["viewer"]}
    )
    assert viewer.status_code == 201, viewer.text
    for roles in (["admin"], ["developer"], ["viewer", "admin"]):
        response = env.client.post(
            "/admin/users", headers=manager.auth, json={"username": "v2", "roles": roles}
        )
        body = problem(response, 403, "forbidden")
        assert body["reason"] == "beyond_own_roles"
    promote = env.client.patch(
        f"/admin/users/{viewer.json()['id']}", headers=manager.auth, json={"roles": ["admin"]}
    )
    problem(promote, 403, "forbidden")
    # Nor manage someone who holds more: suspending an admin is refused.
    problem(
        env.client.patch(
            f"/admin/users/{root.user_id}", headers=manager.auth, json={"status": "suspended"}
        ),
        403,
        "forbidden",
    )
    assert env.client.get("/me", headers=root.auth).status_code == 200
    denied = events(env, root, action="authz.denied")
    assert any(e["reason"] == "beyond_own_roles" and e["actor"] == manager.user_id for e in denied)
    # A role holding more than the creator holds cannot be created either.
    problem(
        env.client.post(
            "/admin/roles",
            headers=manager.auth,
            json={"name": "sneaky", "permissions": ["users.manage", "policy.manage"]},
        ),
        403,
        "forbidden",
    )


def test_step_up_needed_for_user_administration(env: Env) -> None:
    low = mint(env, acr="aal1")
    response = env.client.post(
        "/admin/users", headers=low.auth, json={"username": "x1", "roles": ["viewer"]}
    )
    body = problem(response, 401, "insufficient_user_authentication")
    header = response.headers["www-authenticate"]
    assert header.startswith('Bearer error="insufficient_user_authentication"')
    assert 'acr_values="aal2"' in header
    assert "max_age=300" in header
    assert body["acr_values"] == "aal2"

    stale = mint(env, acr="aal2", age=301)
    response = env.client.patch(
        f"/admin/users/{low.user_id}", headers=stale.auth, json={"status": "suspended"}
    )
    problem(response, 401, "insufficient_user_authentication")
    assert "max_age=300" in response.headers["www-authenticate"]
    assert 'error_description="' in response.headers["www-authenticate"]
    # Reads have no max_age by default: the stale aal2 token may still list users.
    assert env.client.get("/admin/users", headers=stale.auth).status_code == 200

    fresh = mint(env, acr="aal2")
    assert (
        env.client.post(
            "/admin/users", headers=fresh.auth, json={"username": "x1", "roles": ["viewer"]}
        ).status_code
        == 201
    )
    admin = mint(env, acr="aal3")
    challenges = events(env, admin, action="step_up.challenged")
    assert {e["details"]["permission"] for e in challenges} >= {"users.manage"}


def test_aal3_needed_for_factor_reset_and_audit_export(env: Env) -> None:
    aal2 = mint(env, acr="aal2")
    target = mint(env, role="viewer")
    for response in (
        env.client.post(f"/admin/users/{target.user_id}/reset-factors", headers=aal2.auth),
        env.client.get("/admin/audit/export", headers=aal2.auth),
    ):
        problem(response, 401, "insufficient_user_authentication")
        assert 'acr_values="aal3"' in response.headers["www-authenticate"]
        assert "max_age=300" in response.headers["www-authenticate"]
    stale = mint(env, acr="aal3", age=400)
    problem(
        env.client.get("/admin/audit/export", headers=stale.auth),
        401,
        "insufficient_user_authentication",
    )


def test_policy_switch_raises_admin_actions_to_aal3(env: Env) -> None:
    admin = mint(env, acr="aal3")
    bootstrap = {"Authorization": f"Bearer {env.login().json()['access_token']}"}
    for auth in (admin.auth, bootstrap):  # no lock-out: every admin holds a security key
        assert register_key(env, auth, SoftAuthenticator()).status_code == 201
    document = env.client.get("/admin/policy", headers=admin.auth).json()
    document["admin_requires_aal3"] = True
    assert env.client.put("/admin/policy", headers=admin.auth, json=document).status_code == 200
    aal2 = mint(env, acr="aal2")
    response = env.client.get("/admin/users", headers=aal2.auth)
    problem(response, 401, "insufficient_user_authentication")
    assert 'acr_values="aal3"' in response.headers["www-authenticate"]


def test_non_admins_are_forbidden(env: Env) -> None:
    for role in ("viewer", "developer"):
        user = mint(env, role=role, acr="aal3")
        for response in (
            env.client.get("/admin/users", headers=user.auth),
            env.client.post("/admin/users", headers=user.auth, json={"username": "z", "roles": []}),
            env.client.get(f"/admin/users/{user.user_id}", headers=user.auth),
            env.client.get("/admin/audit", headers=user.auth),
            env.client.get("/admin/policy", headers=user.auth),
            env.client.get("/admin/tenants", headers=user.auth),
            env.client.get("/admin/service-accounts", headers=user.auth),
        ):
            problem(response, 403, "forbidden")
    problem(env.client.get("/admin/users"), 401, "unauthenticated")
