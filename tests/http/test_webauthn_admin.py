"""Issue 13: no lock-out by policy, the last aal3 factor, and an admin's reset of keys."""

from __future__ import annotations

from typing import Any

from tests.admin.helpers import mint
from tests.http.webauthn_helpers import (
    actions,
    bearer,
    passkey_sign_in,
    register_key,
    sign_in_with_key,
    signed_in_admin,
)
from tests.support.app import Env
from tests.support.authenticator import SoftAuthenticator


def require_aal3(env: Env, auth: dict[str, str]) -> Any:
    document = env.client.get("/admin/policy", headers=auth).json()
    document["admin_requires_aal3"] = True
    return env.client.put("/admin/policy", headers=auth, json=document)


def test_policy_requiring_aal3_while_admins_lack_a_key_is_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    other = mint(env, acr="aal3", username="other-admin")
    refused = require_aal3(env, other.auth)
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["code"] == "admin_lockout"
    assert body["errors"] == ["admin", "other-admin"]
    assert "admin, other-admin" in body["detail"]
    event = actions(env, "policy.updated")[-1]
    assert event.outcome == "failure"
    assert event.reason == "admin_lockout"
    # A synced passkey does not reach aal3: it does not count.
    synced = SoftAuthenticator(backup_eligible=True, backup_state=True, counter_step=0)
    assert register_key(env, bearer(tokens), synced).status_code == 201
    assert register_key(env, other.auth, SoftAuthenticator()).status_code == 201
    still = require_aal3(env, other.auth)
    assert still.status_code == 400
    assert still.json()["errors"] == ["admin"]
    assert register_key(env, bearer(tokens), SoftAuthenticator()).status_code == 201
    accepted = require_aal3(env, other.auth)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["admin_requires_aal3"] is True


def test_policy_manage_at_aal3_while_admins_lack_a_key_is_refused(env: Env) -> None:
    """The same lock-out through the actions map: the permission that could undo it."""
    signed_in_admin(env)
    other = mint(env, acr="aal3", username="other-admin")
    document = env.client.get("/admin/policy", headers=other.auth).json()
    document["actions"]["policy.manage"] = {"acr": "aal3", "max_age": 900}
    refused = env.client.put("/admin/policy", headers=other.auth, json=document)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "admin_lockout"
    assert refused.json()["errors"] == ["admin", "other-admin"]
    assert (
        env.client.get("/admin/policy", headers=other.auth)
        .json()["actions"]
        .get("policy.manage", {})
        .get("acr")
        != "aal3"
    )  # nothing saved


def test_removing_the_last_aal3_key_while_policy_requires_aal3_is_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    key = SoftAuthenticator()
    first = register_key(env, bearer(tokens), key).json()["factor"]
    env.next_step()
    signed_in = sign_in_with_key(env, key)
    assert signed_in.json()["acr"] == "aal3"
    auth = bearer(signed_in.json())
    assert require_aal3(env, auth).status_code == 200  # the only admin holds a key
    removed = env.client.delete(f"/me/factors/{first['id']}", headers=auth)
    assert removed.status_code == 409, removed.text
    assert removed.json()["code"] == "last_aal3_factor"
    spare = register_key(env, auth, SoftAuthenticator(), name="Spare").json()["factor"]
    assert env.client.delete(f"/me/factors/{first['id']}", headers=auth).status_code == 204
    refused = env.client.delete(f"/me/factors/{spare['id']}", headers=auth)
    assert refused.status_code == 409


def test_admin_reset_removes_a_users_keys_at_aal3_and_is_audited(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    key = SoftAuthenticator()
    assert register_key(env, bearer(tokens), key).status_code == 201
    me = env.client.get("/me", headers=bearer(tokens)).json()
    stale = mint(env, acr="aal2")
    assert (
        env.client.post(f"/admin/users/{me['id']}/reset-factors", headers=stale.auth).status_code
        == 401
    )  # aal3 needed
    admin = mint(env, acr="aal3")
    reset = env.client.post(f"/admin/users/{me['id']}/reset-factors", headers=admin.auth)
    assert reset.status_code == 200, reset.text
    assert actions(env, "user.factors_reset")[-1].details["factors_removed"] == 2
    assert passkey_sign_in(env, key).status_code == 401
