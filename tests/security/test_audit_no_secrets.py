"""No password, code, seed, key or token ever lands in a stored audit event."""

from __future__ import annotations

from tests.support.app import Env
from tests.support.server import ADMIN_PASSWORD

from bastion.audit import query
from bastion.runtime import Runtime


def test_no_secret_reaches_the_audit_log(env: Env) -> None:
    secrets: list[str] = [ADMIN_PASSWORD]
    env.login("admin", "a wrong password typed here")
    env.login(ADMIN_PASSWORD, ADMIN_PASSWORD)  # a password typed into the username field
    restricted = env.login().json()["access_token"]
    secrets.append(restricted)
    auth = {"Authorization": f"Bearer {restricted}"}
    enrollment = env.client.post("/me/factors/totp", headers=auth).json()
    secrets.append(enrollment["secret"])
    code = env.totp_now(enrollment["secret"])
    secrets.append(code)
    env.client.post(
        f"/me/factors/totp/{enrollment['factor_id']}/activate", headers=auth, json={"code": code}
    )
    codes = env.client.post("/me/recovery-codes", headers=auth).json()["codes"]
    secrets.extend(codes)
    env.next_step()
    tx = env.login().json()
    env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify", json={"method": "totp", "code": "000000"}
    )
    tokens = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "recovery_code", "code": codes[0]},
    ).json()
    secrets += [tokens["access_token"], tokens["refresh_token"]]
    refreshed = env.client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    secrets += [refreshed.json()["access_token"], refreshed.json()["refresh_token"]]
    env.client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    env.client.post("/auth/revoke", data={"token": refreshed.json()["refresh_token"]})

    rt: Runtime = env.client.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.read() as conn:
        events = query(conn, tenant_id=None, limit=1000).events
    actions = {event.action for event in events}
    assert {
        "login.failure",
        "login.success",
        "factor.enrolled",
        "factor.activated",
        "recovery_code.used",
        "recovery_codes.regenerated",
        "token.refreshed",
        "token.refresh_reuse_detected",
    } <= actions
    stored = "\n".join(repr(event) for event in events)
    leaked = [secret for secret in secrets if secret and secret in stored]
    assert leaked == []
    assert "a wrong password typed here" not in stored
