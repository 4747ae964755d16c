"""Attacks on the sign-in endpoints, through the real app (one test per attack)."""

from __future__ import annotations

import pytest
from tests.support.app import Env
from tests.support.server import ADMIN_PASSWORD

pytest_plugins: list[str] = []


def _suspend(env: Env, username: str) -> None:
    from bastion.identity.users import find_user, set_status
    from bastion.runtime import Runtime

    runtime: Runtime = env.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.begin() as conn:
        user = find_user(conn, username)
        assert user is not None
        set_status(conn, user.id, "suspended", now=env.clock.now())


def test_unknown_user_wrong_password_and_suspended_user_look_identical(env: Env) -> None:
    unknown = env.login("nobody-here", ADMIN_PASSWORD)
    wrong = env.login("admin", "not the password at all")
    _suspend(env, "admin")
    suspended = env.login("admin", ADMIN_PASSWORD)
    assert unknown.status_code == wrong.status_code == suspended.status_code == 401
    assert unknown.json() == wrong.json() == suspended.json()
    assert unknown.json()["code"] == "invalid_credentials"
    assert unknown.headers["content-type"] == "application/problem+json"


def test_unknown_user_still_runs_an_argon2_verify(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bastion.authn.login as login

    calls: list[str] = []
    real = login.burn_dummy_verify

    def spy(presented: str, *, hasher: object) -> None:
        calls.append("dummy")
        real(presented, hasher=hasher)  # type: ignore[arg-type]

    monkeypatch.setattr(login, "burn_dummy_verify", spy)
    env.login("ghost", "whatever password")
    assert calls == ["dummy"]


def test_totp_code_replay_rejected(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    code = env.totp_now(secret)
    first = env.login().json()
    ok = env.client.post(
        f"/auth/login/{first['transaction_id']}/verify", json={"method": "totp", "code": code}
    )
    assert ok.status_code == 200
    second = env.login().json()
    replay = env.client.post(
        f"/auth/login/{second['transaction_id']}/verify", json={"method": "totp", "code": code}
    )
    assert replay.status_code == 401
    assert replay.json()["code"] == "invalid_code"


def test_recovery_code_reuse_rejected(env: Env) -> None:
    _, codes = env.enrolled_admin()
    first = env.login().json()
    assert (
        env.client.post(
            f"/auth/login/{first['transaction_id']}/verify",
            json={"method": "recovery_code", "code": codes[3]},
        ).status_code
        == 200
    )
    second = env.login().json()
    reuse = env.client.post(
        f"/auth/login/{second['transaction_id']}/verify",
        json={"method": "recovery_code", "code": codes[3]},
    )
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "invalid_code"


def test_regenerated_recovery_codes_replace_the_old_ones(env: Env) -> None:
    secret, old_codes = env.enrolled_admin()
    tokens = env.full_login(secret)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    new_codes = env.client.post("/me/recovery-codes", headers=auth).json()["codes"]
    assert len(new_codes) == 10
    assert not set(new_codes) & set(old_codes)
    tx = env.login().json()
    old = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "recovery_code", "code": old_codes[0]},
    )
    assert old.status_code == 401


def test_refresh_token_reuse_revokes_the_family(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    tokens = env.full_login(secret)
    first = env.client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert first.status_code == 200
    stolen_replay = env.client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert stolen_replay.status_code == 400
    assert stolen_replay.json()["error"] == "invalid_grant"
    # The legitimate holder's newer refresh token died with the family.
    newer = env.client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
    )
    assert newer.status_code == 400
    env.clock.advance(1)
    me = env.client.get("/me", headers={"Authorization": f"Bearer {first.json()['access_token']}"})
    assert me.status_code == 401


def test_login_transaction_reuse_rejected(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    tx = env.login().json()
    assert (
        env.client.post(
            f"/auth/login/{tx['transaction_id']}/verify",
            json={"method": "totp", "code": env.totp_now(secret)},
        ).status_code
        == 200
    )
    env.next_step()
    again = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    )
    assert again.status_code == 401
    assert again.json()["code"] == "invalid_transaction"


def test_login_transaction_expires_after_five_minutes(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    tx = env.login().json()
    env.clock.advance(301)
    late = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    )
    assert late.status_code == 401
    assert late.json()["code"] == "invalid_transaction"


def test_login_transaction_dies_after_five_wrong_codes(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    tx = env.login().json()
    url = f"/auth/login/{tx['transaction_id']}/verify"
    for _ in range(5):
        wrong = env.client.post(url, json={"method": "totp", "code": "000000"})
        assert wrong.status_code == 401
    right = env.client.post(url, json={"method": "totp", "code": env.totp_now(secret)})
    assert right.status_code == 401
    assert right.json()["code"] == "invalid_transaction"


def test_enrollment_token_cannot_add_factor_once_one_is_active(env: Env) -> None:
    restricted = env.login().json()["access_token"]
    env.enrolled_admin()
    attacker = env.client.post(
        "/me/factors/totp", headers={"Authorization": f"Bearer {restricted}"}
    )
    assert attacker.status_code in {401, 403}


def test_repeated_failures_are_throttled_with_retry_after(env: Env) -> None:
    for _ in range(10):
        assert env.login("admin", "wrong wrong wrong").status_code == 401
    limited = env.login("admin", "wrong wrong wrong")
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) > 0


def test_refused_attempts_are_audited_as_one_counted_event_per_second(env: Env) -> None:
    from sqlalchemy import select

    from bastion.runtime import Runtime
    from bastion.storage.schema import audit_events

    for _ in range(10):
        assert env.login("admin", "wrong wrong wrong").status_code == 401
    for _ in range(3):
        assert env.login("admin", "hunter2 hunter2").status_code == 429
    app = env.client.app
    app.state.audit_buffer.flush()  # type: ignore[attr-defined]
    runtime: Runtime = app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.read() as conn:
        rows = conn.execute(
            select(audit_events.c.outcome, audit_events.c.details).where(
                audit_events.c.reason == "rate_limited"
            )
        ).all()
    assert [(outcome, details["scope"], details["attempts"]) for outcome, details in rows] == [
        ("denied", "account", 3)
    ]
    assert rows[0].details["ip"] == "testclient"
    assert "hunter2" not in str(rows)
    assert "admin" not in str(rows)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[]", "application/json"),
        (b'{"username": 5, "password": "x"}', "application/json"),
        (b'{"username": "admin"}', "application/json"),
        (b'{"username": "admin", "password": "x", "extra": 1}', "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b"username=admin&password=x", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_login_bodies_get_a_clear_4xx(env: Env, body: bytes, content_type: str) -> None:
    response = env.client.post("/auth/login", content=body, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert "Traceback" not in response.text


def test_huge_body_refused_with_413(env: Env) -> None:
    response = env.client.post(
        "/auth/login",
        content=b"x" * (33 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize("path", ["/auth/login/ltx_nope/verify", "/auth/login/x/verify"])
def test_unknown_transaction_rejected(env: Env, path: str) -> None:
    response = env.client.post(path, json={"method": "totp", "code": "123456"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_transaction"


def test_verify_with_wrong_types_is_a_4xx(env: Env) -> None:
    response = env.client.post("/auth/login/ltx_x/verify", json={"method": "totp", "code": 123456})
    assert response.status_code == 422


def test_bad_refresh_token_is_invalid_grant(env: Env) -> None:
    for token in ("", "bst_rt_short", "eyJhbGciOi.x.y", "x" * 5000):
        response = env.client.post(
            "/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
        )
        assert response.status_code in {400, 422}
        assert "Traceback" not in response.text


def test_revoke_always_answers_200(env: Env) -> None:
    for token in ("", "garbage", "bst_rt_" + "A" * 43, "a.b.c"):
        assert env.client.post("/auth/revoke", data={"token": token}).status_code == 200
