"""``/admin/users``: create, list, read, change, deprovision, reset factors — and the audit."""

from __future__ import annotations

from unittest.mock import ANY

from sqlalchemy import select

from bastion.storage.schema import setup_tokens, users
from bastion.tokens import hash_secret
from tests.admin.helpers import events, mint, problem, runtime_of
from tests.support.app import Env

PASSPHRASE = "a long and quiet passphrase"


def test_create_user_with_password_is_audited_and_can_log_in(env: Env) -> None:
    admin = mint(env)
    created = env.client.post(
        "/admin/users",
        headers=admin.auth,
        json={"username": "Alice", "password": PASSPHRASE, "roles": ["developer"]},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["username"] == "alice"  # normalised
    assert body["roles"] == ["developer"]
    assert body["tenant"] == "default"
    assert body["status"] == "active"
    assert body["password_set"] is True
    assert "enrollment" not in body
    assert PASSPHRASE not in created.text
    assert "$argon2" not in created.text

    login = env.login("alice", PASSPHRASE).json()
    assert login["status"] == "enrollment_required"  # no factor yet: enrol first

    [event] = events(env, admin, action="user.created", resource=f"user:{body['id']}")
    assert event["actor"] == admin.user_id
    assert event["outcome"] == "success"
    assert event["details"] == {
        "user_id": body["id"],
        "username": "alice",
        "roles": ["developer"],
        "status": "active",
        "tenant": "default",
        "enrollment": False,
        "request_id": ANY,
    }


def test_create_user_without_password_returns_a_one_time_enrollment_token(env: Env) -> None:
    admin = mint(env)
    created = env.client.post(
        "/admin/users", headers=admin.auth, json={"username": "bob", "roles": ["viewer"]}
    )
    assert created.status_code == 201, created.text
    enrollment = created.json()["enrollment"]
    assert enrollment["token"].startswith("bst_enroll_")
    assert enrollment["url"].endswith("/setup/enroll#" + enrollment["token"])
    rt = runtime_of(env)
    with rt.db.read() as conn:
        row = conn.execute(select(setup_tokens)).all()
    stored = [r for r in row if r.purpose == "enrollment"]
    assert len(stored) == 1
    assert stored[0].token_hash == hash_secret(enrollment["token"])  # only the hash is kept
    assert stored[0].user_id == created.json()["id"]
    [event] = events(env, admin, action="user.created", resource=f"user:{created.json()['id']}")
    assert event["details"]["enrollment"] is True
    assert enrollment["token"] not in str(event)


def test_create_user_in_another_tenant_needs_it_to_exist(env: Env) -> None:
    admin = mint(env)
    missing = env.client.post(
        "/admin/users",
        headers=admin.auth,
        json={"username": "carol", "roles": ["viewer"], "tenant": "nowhere"},
    )
    problem(missing, 404, "tenant_not_found")
    assert (
        env.client.post("/admin/tenants", headers=admin.auth, json={"name": "acme"}).status_code
        == 201
    )
    made = env.client.post(
        "/admin/users",
        headers=admin.auth,
        json={"username": "carol", "roles": ["admin"], "tenant": "acme"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["tenant"] == "acme"


def test_usernames_are_unique_per_installation(env: Env) -> None:
    admin = mint(env)
    env.client.post("/admin/tenants", headers=admin.auth, json={"name": "acme"})
    body = {"username": "dave", "roles": ["viewer"]}
    assert env.client.post("/admin/users", headers=admin.auth, json=body).status_code == 201
    problem(
        env.client.post("/admin/users", headers=admin.auth, json={**body, "tenant": "acme"}),
        409,
        "username_unavailable",
    )
    problem(
        env.client.post("/admin/users", headers=admin.auth, json={**body, "username": "DAVE"}),
        409,
        "username_unavailable",
    )


def test_weak_password_is_refused(env: Env) -> None:
    admin = mint(env)
    for weak in ("short", "password123", "aaaaaaaaaaaa"):
        response = env.client.post(
            "/admin/users",
            headers=admin.auth,
            json={"username": "erin", "password": weak, "roles": ["viewer"]},
        )
        body = problem(response, 422, "weak_password")
        assert weak not in body["detail"]


def test_password_minimum_follows_the_tenant_policy(env: Env) -> None:
    admin = mint(env)
    policy = env.client.get("/admin/policy", headers=admin.auth).json()
    policy["password_min_length"] = 30
    assert env.client.put("/admin/policy", headers=admin.auth, json=policy).status_code == 200
    response = env.client.post(
        "/admin/users",
        headers=admin.auth,
        json={"username": "erin", "password": PASSPHRASE, "roles": ["viewer"]},
    )
    problem(response, 422, "weak_password")


def test_list_and_get_users(env: Env) -> None:
    admin = mint(env, username="root-admin")
    made = env.client.post(
        "/admin/users",
        headers=admin.auth,
        json={"username": "frank", "roles": ["viewer"], "collections": ["docs", "kb-*"]},
    ).json()
    listed = env.client.get("/admin/users", headers=admin.auth)
    assert listed.status_code == 200
    names = {u["username"]: u for u in listed.json()["users"]}
    assert {"admin", "root-admin", "frank"} <= set(names)
    assert names["frank"]["collections"] == ["docs", "kb-*"]
    one = env.client.get(f"/admin/users/{made['id']}", headers=admin.auth)
    assert one.status_code == 200
    assert one.json()["factors"] == []
    assert "password_hash" not in one.text
    assert "$argon2" not in one.text
    problem(env.client.get("/admin/users/usr_nope", headers=admin.auth), 404, "user_not_found")


def test_patch_roles_and_status_with_before_and_after(env: Env) -> None:
    admin = mint(env)
    user = mint(env, role="viewer", acr="aal2")
    changed = env.client.patch(
        f"/admin/users/{user.user_id}", headers=admin.auth, json={"roles": ["developer"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["roles"] == ["developer"]
    [updated] = events(env, admin, action="user.updated")
    assert updated["details"]["before"] == {
        "roles": ["viewer"],
        "collections": None,
        "status": "active",
    }
    assert updated["details"]["after"] == {
        "roles": ["developer"],
        "collections": None,
        "status": "active",
    }

    suspended = env.client.patch(
        f"/admin/users/{user.user_id}", headers=admin.auth, json={"status": "suspended"}
    )
    assert suspended.status_code == 200
    assert suspended.json()["status"] == "suspended"
    problem(env.client.get("/me", headers=user.auth), 401, "invalid_token")
    [event] = events(env, admin, action="user.suspended")
    assert event["details"]["before"]["status"] == "active"
    assert event["details"]["after"]["status"] == "suspended"

    again = env.client.patch(
        f"/admin/users/{user.user_id}", headers=admin.auth, json={"status": "active"}
    )
    assert again.json()["status"] == "active"
    # Reactivation does not revive the revoked sessions: the user signs in again.
    problem(env.client.get("/me", headers=user.auth), 401, "invalid_token")


def test_role_change_takes_effect_on_the_live_token_at_once(env: Env) -> None:
    admin = mint(env)
    other = mint(env, acr="aal3")
    assert env.client.get("/admin/users", headers=other.auth).status_code == 200
    env.client.patch(
        f"/admin/users/{other.user_id}", headers=admin.auth, json={"roles": ["viewer"]}
    )
    problem(env.client.get("/admin/users", headers=other.auth), 403, "forbidden")


def test_delete_deprovisions(env: Env) -> None:
    admin = mint(env)
    user = mint(env, role="developer", acr="aal2")
    assert env.client.get("/me", headers=user.auth).status_code == 200
    deleted = env.client.delete(f"/admin/users/{user.user_id}", headers=admin.auth)
    assert deleted.status_code == 204
    problem(env.client.get("/me", headers=user.auth), 401, "invalid_token")
    problem(
        env.client.get(f"/admin/users/{user.user_id}", headers=admin.auth), 404, "user_not_found"
    )
    problem(
        env.client.delete(f"/admin/users/{user.user_id}", headers=admin.auth), 404, "user_not_found"
    )
    listed = env.client.get("/admin/users", headers=admin.auth).json()["users"]
    assert user.user_id not in {u["id"] for u in listed}
    rt = runtime_of(env)
    with rt.db.read() as conn:
        row = conn.execute(select(users).where(users.c.id == user.user_id)).one()
    assert row.status == "deleted"
    assert row.password_hash is None
    [event] = events(env, admin, action="user.deleted")
    assert event["details"]["before"] == {
        "roles": ["developer"],
        "collections": None,
        "status": "active",
    }


def test_reset_factors_removes_factors_and_sessions(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    tokens = env.full_login(secret)
    victim = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = env.client.get("/me", headers=victim).json()
    admin = mint(env, acr="aal3")
    reset = env.client.post(f"/admin/users/{me['id']}/reset-factors", headers=admin.auth)
    assert reset.status_code == 200, reset.text
    assert reset.json()["factors_removed"] == 1
    problem(env.client.get("/me", headers=victim), 401, "invalid_token")
    assert env.login().json()["status"] == "enrollment_required"  # enrols again
    [event] = events(env, admin, action="user.factors_reset")
    assert event["details"] == {
        "user_id": me["id"],
        "username": "admin",
        "factors_removed": 1,
        "request_id": ANY,
    }
