"""Issue 11.9: lockout as a weapon.

The attack found on the running server: ten wrong passwords from ten addresses locked any
account (the only admin included) for 15 minutes, renewable for ever by anyone who knew
the username, and there was no unlock. Failures are now throttled by growing delays
rather than a hard lock, failures from addresses the user has never signed in from are
counted apart from familiar ones, and admins have an audited unlock.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from tests.admin.helpers import mint, problem, runtime_of
from tests.support.app import Env
from tests.support.server import ADMIN_PASSWORD

from bastion.audit import query

HOME = "192.0.2.10"  # where the owner signs in
STRANGERS = [f"198.51.100.{n}" for n in range(1, 11)]


def client_at(env: Env, address: str) -> TestClient:
    """The same app, reached from ``address``."""
    return TestClient(env.client.app, client=(address, 50000), raise_server_exceptions=False)


def sign_in(env: Env, address: str, password: str = ADMIN_PASSWORD) -> Any:
    return client_at(env, address).post(
        "/auth/login", json={"username": "admin", "password": password}
    )


def full_sign_in(env: Env, address: str, secret: str) -> Any:
    """Password and TOTP from ``address``; the tokens (or the refusal)."""
    started = sign_in(env, address)
    if started.status_code != 200:
        return started
    verified = client_at(env, address).post(
        f"/auth/login/{started.json()['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    )
    env.next_step()
    return verified


def audit(env: Env, action: str) -> list[Any]:
    with runtime_of(env).db.read() as conn:
        return list(query(conn, tenant_id=None, action=action, limit=1000).events)


def strangers_guess(env: Env, rounds: int = 1) -> list[int]:
    return [
        sign_in(env, address, "a wrong guess").status_code
        for _ in range(rounds)
        for address in STRANGERS
    ]


def test_lockout_by_strangers_does_not_block_owner_from_familiar_address(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    assert full_sign_in(env, HOME, secret).status_code == 200  # HOME is now familiar
    answers = strangers_guess(env, rounds=2)
    assert answers[:10] == [401] * 10
    assert set(answers[10:]) == {429}
    owner = full_sign_in(env, HOME, secret)
    assert owner.status_code == 200, "strangers locked the owner out"
    assert owner.json()["acr"] == "aal2"


def test_strangers_are_slowed_by_growing_delays_not_locked_for_a_quarter_hour(env: Env) -> None:
    env.enrolled_admin()
    strangers_guess(env)
    first = sign_in(env, STRANGERS[0], "a wrong guess")
    assert first.status_code == 429
    assert int(first.headers["retry-after"]) == 30, "a hard 15-minute lock, not a delay"
    env.clock.advance(30)
    assert sign_in(env, STRANGERS[1], "a wrong guess").status_code == 401
    second = sign_in(env, STRANGERS[2], "a wrong guess")
    assert int(second.headers["retry-after"]) == 60  # the delay grows
    env.clock.advance(60)
    assert sign_in(env, STRANGERS[3]).status_code == 200  # the owner, travelling, gets in


def test_familiar_address_failures_are_counted_apart(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    assert full_sign_in(env, HOME, secret).status_code == 200
    for _ in range(10):
        assert sign_in(env, HOME, "my fingers slipped").status_code == 401
    assert sign_in(env, HOME).status_code == 429  # the owner's own typos are throttled too
    assert sign_in(env, STRANGERS[0], "a wrong guess").status_code == 401  # …apart
    env.client.app.state.audit_buffer.flush()  # type: ignore[attr-defined]
    refused = [
        e.details["scope"] for e in audit(env, "login.failure") if e.reason == "rate_limited"
    ]
    assert refused == ["account_familiar"]


def test_admin_unlock_clears_password_and_second_factor_counters(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    for _ in range(5):
        tx = sign_in(env, HOME).json()
        client_at(env, HOME).post(
            f"/auth/login/{tx['transaction_id']}/verify", json={"method": "totp", "code": "000000"}
        )
    strangers_guess(env)
    assert sign_in(env, STRANGERS[0]).status_code == 429
    admin = mint(env, role="admin", acr="aal3")
    users = env.client.get("/admin/users", headers=admin.auth).json()["users"]
    owner = next(user["id"] for user in users if user["username"] == "admin")

    stale = mint(env, role="admin", acr="aal2", age=301)
    assert env.client.post(f"/admin/users/{owner}/unlock", headers=stale.auth).status_code == 401
    viewer = mint(env, role="viewer", acr="aal3")
    problem(env.client.post(f"/admin/users/{owner}/unlock", headers=viewer.auth), 403, "forbidden")

    unlocked = env.client.post(f"/admin/users/{owner}/unlock", headers=admin.auth)
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["user_id"] == owner
    assert full_sign_in(env, STRANGERS[0], secret).status_code == 200
    event = audit(env, "user.unlocked")[-1]
    assert event.actor == admin.user_id
    assert event.resource == f"user:{owner}"
    assert event.details["sign_in_failures"] == 10
    assert event.details["second_factor_failures"] == 5


def test_tenant_admin_cannot_unlock_a_user_of_another_tenant(env: Env) -> None:
    env.enrolled_admin()
    outsider = mint(env, role="admin", tenant="acme", acr="aal3")
    admin = mint(env, role="admin", acr="aal3")
    users = env.client.get("/admin/users", headers=admin.auth).json()["users"]
    owner = next(user["id"] for user in users if user["username"] == "admin")
    answer = env.client.post(f"/admin/users/{owner}/unlock", headers=outsider.auth)
    problem(answer, 404, "user_not_found")
    assert not audit(env, "user.unlocked")
