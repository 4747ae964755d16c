"""Issue 13: a recovery-code sign-in says what it is in its token, not ``otp``."""

from __future__ import annotations

from tests.support.app import Env


def test_recovery_code_sign_in_reports_recovery_code_amr(env: Env) -> None:
    secret, codes = env.enrolled_admin()
    tx = env.login().json()
    recovered = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "recovery_code", "code": codes[0]},
    )
    assert recovered.status_code == 200, recovered.text
    assert sorted(recovered.json()["amr"]) == ["mfa", "pwd", "recovery_code"]
    me = env.client.get(
        "/me", headers={"Authorization": f"Bearer {recovered.json()['access_token']}"}
    )
    assert sorted(me.json()["amr"]) == ["mfa", "pwd", "recovery_code"]
    env.next_step()
    assert sorted(env.full_login(secret)["amr"]) == ["mfa", "otp", "pwd"]  # TOTP still otp
