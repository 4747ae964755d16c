"""``/admin/service-accounts`` and their keys: shown once, hashed at rest, revocable."""

from __future__ import annotations

from unittest.mock import ANY

from sqlalchemy import select

from bastion.storage.schema import api_keys
from bastion.tokens import hash_secret
from tests.admin.helpers import events, mint, problem, runtime_of
from tests.support.app import Env


def test_service_account_and_key_lifecycle(env: Env) -> None:
    admin = mint(env)
    created = env.client.post(
        "/admin/service-accounts",
        headers=admin.auth,
        json={"name": "indexer", "roles": ["viewer"], "collections": ["docs-*"]},
    )
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["roles"] == ["viewer"]
    assert account["collections"] == ["docs-*"]
    problem(
        env.client.post(
            "/admin/service-accounts", headers=admin.auth, json={"name": "indexer", "roles": []}
        ),
        409,
        "service_account_exists",
    )

    made = env.client.post(
        f"/admin/service-accounts/{account['id']}/keys",
        headers=admin.auth,
        json={"expires_in": 86400},
    )
    assert made.status_code == 201, made.text
    key = made.json()
    assert key["key"].startswith("bst_sk_")
    assert key["hint"] == key["key"][-4:]
    assert key["status"] == "active"
    with runtime_of(env).db.read() as conn:
        stored = conn.execute(select(api_keys).where(api_keys.c.id == key["id"])).one()
    assert stored.key_hash == hash_secret(key["key"])

    listed = env.client.get(f"/admin/service-accounts/{account['id']}/keys", headers=admin.auth)
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()["keys"]] == [key["id"]]
    assert key["key"] not in listed.text
    one = env.client.get(f"/admin/service-accounts/{account['id']}", headers=admin.auth).json()
    assert one["keys"][0]["status"] == "active"
    assert [
        a["name"]
        for a in env.client.get("/admin/service-accounts", headers=admin.auth).json()[
            "service_accounts"
        ]
    ] == ["indexer"]

    api = {"api-key": key["key"]}
    assert env.client.get("/collections", headers=api).status_code == 200
    revoked = env.client.delete(
        f"/admin/service-accounts/{account['id']}/keys/{key['id']}", headers=admin.auth
    )
    assert revoked.status_code == 204
    assert env.client.get("/collections", headers=api).status_code == 401
    again = env.client.delete(
        f"/admin/service-accounts/{account['id']}/keys/{key['id']}", headers=admin.auth
    )
    assert again.status_code == 204  # idempotent, and no second event
    problem(
        env.client.delete(
            f"/admin/service-accounts/{account['id']}/keys/key_nope", headers=admin.auth
        ),
        404,
        "api_key_not_found",
    )
    after = env.client.get(f"/admin/service-accounts/{account['id']}/keys", headers=admin.auth)
    assert after.json()["keys"][0]["status"] == "revoked"

    second = env.client.post(
        f"/admin/service-accounts/{account['id']}/keys", headers=admin.auth
    ).json()
    assert env.client.get("/collections", headers={"api-key": second["key"]}).status_code == 200
    deleted = env.client.delete(f"/admin/service-accounts/{account['id']}", headers=admin.auth)
    assert deleted.status_code == 204
    assert env.client.get("/collections", headers={"api-key": second["key"]}).status_code == 401
    problem(
        env.client.get(f"/admin/service-accounts/{account['id']}", headers=admin.auth),
        404,
        "service_account_not_found",
    )
    # The name is free again.
    reused = env.client.post(
        "/admin/service-accounts", headers=admin.auth, json={"name": "indexer", "roles": ["viewer"]}
    )
    assert reused.status_code == 201, reused.text

    actions = [e["action"] for e in events(env, admin, order="asc", limit=1000)]
    assert actions.count("api_key.revoked") == 1
    for expected in (
        "service_account.created",
        "api_key.created",
        "api_key.revoked",
        "service_account.deleted",
    ):
        assert expected in actions
    [created_event, _] = events(env, admin, action="service_account.created")[::-1]
    assert created_event["details"] == {
        "service_account_id": account["id"],
        "name": "indexer",
        "roles": ["viewer"],
        "collections": ["docs-*"],
        "request_id": ANY,
    }
    [key_event, _] = events(env, admin, action="api_key.created")[::-1]
    assert key_event["details"]["key_id"] == key["id"]
    assert key["key"] not in str(events(env, admin, limit=1000))


def test_key_lifetime_is_validated(env: Env) -> None:
    admin = mint(env)
    account = env.client.post(
        "/admin/service-accounts", headers=admin.auth, json={"name": "ci", "roles": ["viewer"]}
    ).json()
    url = f"/admin/service-accounts/{account['id']}/keys"
    for bad in (5, 10**9, "3600", True, -1):
        problem(
            env.client.post(url, headers=admin.auth, json={"expires_in": bad}),
            422,
            "validation_error",
        )
    problem(env.client.post(url, headers=admin.auth, json={"expires": 60}), 422, "validation_error")


def test_service_account_cannot_use_the_admin_api(env: Env) -> None:
    admin = mint(env)
    account = env.client.post(
        "/admin/service-accounts", headers=admin.auth, json={"name": "robot", "roles": ["admin"]}
    ).json()
    key = env.client.post(
        f"/admin/service-accounts/{account['id']}/keys", headers=admin.auth
    ).json()
    response = env.client.get("/admin/users", headers={"api-key": key["key"]})
    body = problem(response, 403, "forbidden")
    assert body["reason"] == "service_account_assurance"


def test_key_management_needs_step_up(env: Env) -> None:
    admin = mint(env)
    account = env.client.post(
        "/admin/service-accounts", headers=admin.auth, json={"name": "ci", "roles": ["viewer"]}
    ).json()
    stale = mint(env, acr="aal2", age=600)
    response = env.client.post(f"/admin/service-accounts/{account['id']}/keys", headers=stale.auth)
    problem(response, 401, "insufficient_user_authentication")
    assert "max_age=300" in response.headers["www-authenticate"]
