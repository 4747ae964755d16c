"""The whole sign-in story through the real app: bootstrap → enrol → MFA → tokens."""

from __future__ import annotations

import base64
import json

from tests.support.app import Env


def claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_first_login_without_factor_returns_enrollment_required(env: Env) -> None:
    body = env.login().json()
    assert body["status"] == "enrollment_required"
    assert body["token_type"] == "Bearer"
    assert "refresh_token" not in body
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    assert env.client.get("/me", headers=auth).json()["restricted"] == "enrollment"
    assert env.client.get("/me/factors", headers=auth).status_code == 200
    # The restricted token reaches nothing else.
    assert env.client.get("/me/sessions", headers=auth).status_code == 403
    assert env.client.get("/collections", headers=auth).status_code == 403


def test_full_flow_reaches_aal2_and_refreshes(env: Env) -> None:
    secret, _codes = env.enrolled_admin()
    tx = env.login().json()
    assert tx["status"] == "mfa_required"
    assert tx["methods"] == ["totp", "recovery_code"]
    assert tx["expires_in"] == 300
    assert tx["risk"] == {"level": "low"}  # the engine's coarse level (issue 15)
    tokens = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    ).json()
    assert tokens["status"] == "authenticated"
    assert tokens["acr"] == "aal2"
    assert set(tokens["amr"]) == {"pwd", "otp", "mfa"}
    access = claims(tokens["access_token"])
    assert access["acr"] == "aal2"
    for claim in ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "tenant", "roles"):
        assert claim in access
    assert int(access["exp"]) - int(access["iat"]) <= 900  # type: ignore[call-overload]
    me = env.client.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["acr"] == "aal2"
    assert me.json()["roles"] == ["admin"]

    refreshed = env.client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]
    assert claims(refreshed.json()["access_token"])["acr"] == "aal2"

    revoked = env.client.post("/auth/revoke", data={"token": refreshed.json()["refresh_token"]})
    assert revoked.status_code == 200
    env.clock.advance(1)
    after = env.client.get(
        "/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    )
    assert after.status_code == 401


def test_recovery_code_completes_login_once(env: Env) -> None:
    _secret, codes = env.enrolled_admin()
    tx = env.login().json()
    ok = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "recovery_code", "code": codes[0]},
    )
    assert ok.status_code == 200
    assert ok.json()["acr"] == "aal2"


def test_jwks_lists_the_signing_key(env: Env) -> None:
    keys = env.client.get("/.well-known/jwks.json").json()["keys"]
    token = env.login().json()["access_token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "EdDSA"
    assert header["kid"] in {key["kid"] for key in keys}
    assert all("d" not in key for key in keys)


def test_logout_kills_the_session(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    tokens = env.full_login(secret)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert env.client.post("/auth/logout", headers=auth).status_code == 200
    assert env.client.get("/me", headers=auth).status_code == 401
    again = env.client.post(
        "/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_openapi_describes_the_contract(env: Env) -> None:
    paths = env.client.get("/openapi.json").json()["paths"]
    for path in (
        "/auth/login",
        "/auth/login/{transaction_id}/verify",
        "/auth/token",
        "/auth/revoke",
        "/auth/logout",
        "/auth/step-up",
        "/me",
        "/me/factors",
        "/me/factors/totp",
        "/me/recovery-codes",
        "/.well-known/jwks.json",
    ):
        assert path in paths, path
