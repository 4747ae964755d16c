"""Remembered devices (issue 15): issued at a full MFA sign-in, a possession factor at the
next low-risk sign-in (password + device = aal2), listed and revoked by the user and by
admins, expiring after 30 days. The real app in-process with a clock the test moves."""

from __future__ import annotations

from typing import Any

from tests.admin.helpers import events, mint, problem
from tests.support.app import Env
from tests.support.server import ADMIN_PASSWORD


def remembered_sign_in(env: Env, secret: str, name: str | None = "laptop") -> dict[str, Any]:
    """Password + TOTP, asking to remember this device."""
    tx = env.login().json()
    assert tx["status"] == "mfa_required", tx
    body: dict[str, Any] = {
        "method": "totp",
        "code": env.totp_now(secret),
        "remember_device": True,
    }
    if name is not None:
        body["device_name"] = name
    verified = env.client.post(f"/auth/login/{tx['transaction_id']}/verify", json=body)
    assert verified.status_code == 200, verified.text
    env.next_step()
    result: dict[str, Any] = verified.json()
    return result


def login_with(env: Env, credential: str, username: str = "admin") -> Any:
    return env.client.post(
        "/auth/login",
        json={"username": username, "password": ADMIN_PASSWORD, "device_id": credential},
    )


def test_a_remembered_device_is_the_possession_factor_at_the_next_sign_in(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    first = remembered_sign_in(env, secret)
    credential = first["device_credential"]
    assert credential.startswith("bst_dev_")
    assert first["acr"] == "aal2"

    again = login_with(env, credential)
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["status"] == "authenticated"
    assert body["acr"] == "aal2"
    assert {"pwd", "swk", "mfa"} <= set(body["amr"])
    assert "device_credential" not in body  # shown once, when issued

    auth = {"Authorization": f"Bearer {body['access_token']}"}
    (device,) = env.client.get("/me/devices", headers=auth).json()
    assert device["name"] == "laptop"
    assert device["active"] is True
    assert credential not in str(device)
    admin = mint(env)
    (remembered,) = events(env, admin, action="device.remembered")
    assert remembered["details"]["device_id"] == device["id"]
    assert credential not in str(remembered)
    (success,) = [
        e for e in events(env, admin, action="login.success") if e["reason"] == "remembered_device"
    ]
    assert "device_recognised" in {r["reason"] for r in success["details"]["risk_reasons"]}


def test_without_a_device_the_second_factor_is_asked_as_before(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    remembered_sign_in(env, secret)
    assert env.login().json()["status"] == "mfa_required"


def test_a_revoked_device_asks_for_a_second_factor_again(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    first = remembered_sign_in(env, secret)
    auth = {"Authorization": f"Bearer {first['access_token']}"}
    (device,) = env.client.get("/me/devices", headers=auth).json()
    assert env.client.delete(f"/me/devices/{device['id']}", headers=auth).status_code == 204
    problem(env.client.delete(f"/me/devices/{device['id']}", headers=auth), 404, "device_not_found")
    (listed,) = env.client.get("/me/devices", headers=auth).json()
    assert listed["active"] is False
    assert listed["revoked_at"] is not None

    again = login_with(env, first["device_credential"])
    assert again.json()["status"] == "mfa_required"
    assert again.json()["risk"]["level"] == "medium"  # a revoked device coming back
    admin = mint(env)
    (revoked,) = events(env, admin, action="device.revoked")
    assert revoked["details"]["device_id"] == device["id"]


def test_a_device_expires_after_thirty_days(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    credential = remembered_sign_in(env, secret)["device_credential"]
    env.clock.advance(29 * 86_400)
    assert login_with(env, credential).json()["status"] == "authenticated"
    env.clock.advance(2 * 86_400)
    assert login_with(env, credential).json()["status"] == "mfa_required"


def test_admins_list_and_revoke_a_users_devices(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    first = remembered_sign_in(env, secret)
    remembered_sign_in(env, secret, name=None)  # named after the user agent
    admin = mint(env)
    me = env.client.get("/me", headers={"Authorization": f"Bearer {first['access_token']}"})
    user_id = me.json()["id"]
    listed = env.client.get(f"/admin/users/{user_id}/devices", headers=admin.auth).json()
    assert len(listed) == 2
    assert env.client.delete(f"/admin/users/{user_id}/devices", headers=admin.auth).json() == {
        "revoked": 2
    }
    assert login_with(env, first["device_credential"]).json()["status"] == "mfa_required"
    # another tenant's admin does not see them
    other = mint(env, tenant="elsewhere")
    problem(
        env.client.get(f"/admin/users/{user_id}/devices", headers=other.auth), 404, "user_not_found"
    )
    viewer = mint(env, role="viewer")
    assert env.client.get(f"/admin/users/{user_id}/devices", headers=viewer.auth).status_code == 403


def test_an_admins_factor_reset_revokes_remembered_devices(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    first = remembered_sign_in(env, secret)
    me = env.client.get("/me", headers={"Authorization": f"Bearer {first['access_token']}"})
    admin = mint(env, acr="aal3")
    reset = env.client.post(f"/admin/users/{me.json()['id']}/reset-factors", headers=admin.auth)
    assert reset.status_code == 200, reset.text
    assert reset.json()["devices_revoked"] == 1
    # the device no longer stands in for a factor: the user enrols again
    assert login_with(env, first["device_credential"]).json()["status"] != "authenticated"
    (revoked,) = events(env, admin, action="device.revoked")
    assert revoked["details"]["device_id"] is None
    assert revoked["details"]["count"] == 1
