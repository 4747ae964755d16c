"""Issue 11.2: guessing a second factor is limited per account and per method, across
transactions, in the database.

The attack found on the running server: the 5-wrong-codes limit was per transaction and
new transactions were free (20 step-up transactions x 5 codes = 100 guesses in 0.5 s; the
login path, with the password, ~90 guesses/s, and a right password reset the counter).
"""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from tests.admin.helpers import mint, runtime_of
from tests.support.app import Env

from bastion.audit import query

WRONG = "000000"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit(env: Env, action: str) -> list[Any]:
    with runtime_of(env).db.read() as conn:
        return list(query(conn, tenant_id=None, action=action, limit=1000).events)


def wrong_code_in_a_new_login(env: Env, method: str = "totp", code: str = WRONG) -> Any:
    """A fresh login transaction (the right password) and one code."""
    tx = env.login().json()
    assert tx["status"] == "mfa_required", tx
    return env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify", json={"method": method, "code": code}
    )


def test_second_factor_guessing_across_transactions_is_limited(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    answers = [wrong_code_in_a_new_login(env).status_code for _ in range(8)]
    assert answers[:5] == [401] * 5
    assert answers[5:] == [429] * 3, "new transactions gave the guesser fresh attempts"
    # Locked for a while: even the right code is not looked at, in any new transaction.
    locked = wrong_code_in_a_new_login(env, code=env.totp_now(secret))
    assert locked.status_code == 429
    assert locked.json()["code"] == "rate_limited"
    wait = int(locked.headers["retry-after"])
    assert 0 < wait <= 30
    env.clock.advance(wait)
    env.next_step()
    assert wrong_code_in_a_new_login(env, code=env.totp_now(secret)).status_code == 200
    failures = audit(env, "login.failure")
    assert [e.details["failures"] for e in failures if e.reason == "invalid_code"] == [
        1,
        2,
        3,
        4,
        5,
    ]
    locked_events = audit(env, "factor.locked")
    assert locked_events[0].details["method"] == "totp"
    assert locked_events[0].details["retry_after"] == 30


def test_a_right_password_does_not_reset_the_second_factor_counter(env: Env) -> None:
    _secret, _ = env.enrolled_admin()
    for _ in range(5):
        assert wrong_code_in_a_new_login(env).status_code == 401
    env.clock.advance(30)  # the first delay has passed: one more guess is allowed
    assert wrong_code_in_a_new_login(env).status_code == 401
    # The password is right every time; the delay still grows (60 s now, not 0).
    refused = wrong_code_in_a_new_login(env)
    assert refused.status_code == 429
    assert 30 < int(refused.headers["retry-after"]) <= 60


def test_step_up_guessing_across_transactions_is_limited(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    token = bearer(env.full_login(secret)["access_token"])
    answers = []
    for _ in range(4):  # 4 step-up transactions x 5 codes = the old 20 x 5 attack, shortened
        tx = env.client.post("/auth/step-up", headers=token).json()
        for _ in range(5):
            answers.append(
                env.client.post(
                    f"/auth/login/{tx['transaction_id']}/verify",
                    json={"method": "totp", "code": WRONG},
                ).status_code
            )
    assert answers.count(401) == 5
    assert answers.count(429) == 15
    assert audit(env, "step_up.failure")[-1].details["failures"] == 5


def test_recovery_code_guessing_is_limited_apart_from_totp(env: Env) -> None:
    secret, codes = env.enrolled_admin()
    for _ in range(5):
        assert (
            wrong_code_in_a_new_login(env, "recovery_code", "AAAA-BBBB-CCCC-DDDD").status_code
            == 401
        )
    assert wrong_code_in_a_new_login(env, "recovery_code", codes[0]).status_code == 429
    # The owner's authenticator app still works: the method under attack is the one delayed.
    assert wrong_code_in_a_new_login(env, "totp", env.totp_now(secret)).status_code == 200
    assert audit(env, "factor.locked")[-1].details["method"] == "recovery_code"


def test_activation_code_guessing_is_limited(env: Env) -> None:
    restricted = bearer(env.login().json()["access_token"])
    enrolled = env.client.post("/me/factors/totp", headers=restricted).json()
    url = f"/me/factors/totp/{enrolled['factor_id']}/activate"
    answers = [
        env.client.post(url, headers=restricted, json={"code": WRONG}).status_code for _ in range(7)
    ]
    assert answers == [401] * 5 + [429] * 2
    assert [e.outcome for e in audit(env, "factor.activated")] == ["failure"] * 5
    right = env.client.post(
        url, headers=restricted, json={"code": env.totp_now(enrolled["secret"])}
    )
    assert right.status_code == 429  # the pending factor is locked too, whatever the code


def test_second_factor_guessing_stops_for_good_at_one_hundred_failures(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    failures = 0
    while failures < 100:
        answer = wrong_code_in_a_new_login(env)
        if answer.status_code == 429:
            env.clock.advance(int(answer.headers["retry-after"]))
            continue
        assert answer.status_code == 401
        failures += 1
    env.clock.advance(7 * 86_400)  # a week later: still locked, no delay runs out
    env.next_step()
    locked = wrong_code_in_a_new_login(env, code=env.totp_now(secret))
    assert locked.status_code == 429
    assert audit(env, "factor.locked")[-1].details["failures"] == 100
    # An admin's unlock is the reset SP 800-63B-4 asks for.
    admin = mint(env, role="admin", acr="aal3")
    users = env.client.get("/admin/users", headers=admin.auth).json()["users"]
    user_id = next(user["id"] for user in users if user["username"] == "admin")
    unlocked = env.client.post(f"/admin/users/{user_id}/unlock", headers=admin.auth)
    assert unlocked.status_code == 200, unlocked.text
    env.next_step()
    assert wrong_code_in_a_new_login(env, code=env.totp_now(secret)).status_code == 200


def test_a_failed_code_is_recorded_even_for_a_foreign_user_of_the_code(env: Env) -> None:
    _secret, _ = env.enrolled_admin()
    other = pyotp.random_base32()
    answer = wrong_code_in_a_new_login(env, code=pyotp.TOTP(other).at(env.clock.now()))
    assert answer.status_code == 401
    assert audit(env, "login.failure")[-1].details["method"] == "totp"


def test_the_limits_apply_by_the_methods_property_not_by_its_name(env: Env) -> None:
    """A cryptographic assertion (WebAuthn) is never counted nor locked; a typed code is.
    A method plugged into the verify path gets the right treatment from the catalogue."""
    from bastion.authn.guessing import GuessFailure, check_guess, count_failure, guessable
    from bastion.errors import RateLimited
    from bastion.factors.catalog import CATALOG
    from bastion.identity.users import find_user

    assert {m.value for m, p in CATALOG.items() if not p.guessable} == {
        "webauthn", "push", "remembered_device"}  # fmt: skip
    assert guessable("something-new")  # unknown: counted (fail closed)
    rt = runtime_of(env)
    now = env.clock.now()
    with rt.db.begin() as conn:
        user = find_user(conn, "admin")
        assert user is not None
        for _ in range(20):
            failed = count_failure(conn, rt.sealer, user=user, method="webauthn", now=now)
            assert failed == GuessFailure(0, 0, 0, False)
        check_guess(conn, rt.sealer, user_id=user.id, method="webauthn", now=now)
        for _ in range(5):
            count_failure(conn, rt.sealer, user=user, method="totp", now=now)
        with pytest.raises(RateLimited):
            check_guess(conn, rt.sealer, user_id=user.id, method="totp", now=now)
        check_guess(conn, rt.sealer, user_id=user.id, method="webauthn", now=now)
