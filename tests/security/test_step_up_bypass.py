"""Issue 11.1: a stale or stolen token must never mint fresh assurance.

The attack found on the running server: an ``aal2`` token too old for an admin action
(its ``max_age`` has passed) enrols a new TOTP factor, activates it, steps up with it and
creates an admin. Every change of how an account signs in (enrol, activate, remove a
factor, replace the recovery codes, change the password) now needs a recent proof with a
factor the account already had, and a factor (or recovery-code sheet) added in a session
never satisfies that session's step-up.
"""

from __future__ import annotations

import logging
from typing import Any

import pyotp
import pytest
from tests.admin.helpers import runtime_of
from tests.support.app import Env
from tests.support.server import ADMIN_PASSWORD

from bastion.audit import query

NEW_PASSWORD = "a much longer passphrase 42 of mine"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge(response: Any, *, max_age: int = 300) -> None:
    """An RFC 9470 challenge for a recent two-factor proof."""
    assert response.status_code == 401, response.text
    header = response.headers["www-authenticate"]
    assert header.startswith('Bearer error="insufficient_user_authentication"'), header
    assert 'acr_values="aal2"' in header
    assert f"max_age={max_age}" in header


def audit(env: Env, action: str) -> list[Any]:
    with runtime_of(env).db.read() as conn:
        return list(query(conn, tenant_id=None, action=action, limit=1000).events)


def enrol_totp(env: Env, auth: dict[str, str]) -> tuple[Any, str | None]:
    """``POST /me/factors/totp`` and, when it worked, activate the factor with its code."""
    enrolled = env.client.post("/me/factors/totp", headers=auth, json={"name": "thief's phone"})
    if enrolled.status_code != 201:
        return enrolled, None
    secret: str = enrolled.json()["secret"]
    factor_id = enrolled.json()["factor_id"]
    activated = env.client.post(
        f"/me/factors/totp/{factor_id}/activate", headers=auth, json={"code": env.totp_now(secret)}
    )
    return activated, secret if activated.status_code == 200 else None


def new_admin(env: Env, auth: dict[str, str]) -> int:
    made = env.client.post(
        "/admin/users",
        headers=auth,
        json={"username": "mallory", "password": "mallory's own passphrase", "roles": ["admin"]},
    )
    return made.status_code


def test_step_up_bypass_with_factor_enrolled_by_a_stale_token(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    stolen = bearer(env.full_login(secret)["access_token"])
    env.clock.advance(301)  # users.manage asks for an authentication within 300 s
    assert new_admin(env, stolen) == 401

    # The attack, step by step: enrol + activate a factor of the thief's, step up with it.
    attempt, thief_secret = enrol_totp(env, stolen)
    token = stolen
    if thief_secret is not None:
        env.next_step()
        started = env.client.post("/auth/step-up", headers=stolen).json()
        stepped = env.client.post(
            f"/auth/login/{started['transaction_id']}/verify",
            json={"method": "totp", "code": pyotp.TOTP(thief_secret).at(env.clock.now())},
        )
        if stepped.status_code == 200:
            token = bearer(stepped.json()["access_token"])
    assert new_admin(env, token) == 401, "a stale token minted fresh assurance"

    challenge(attempt)  # the enrolment itself is refused: an RFC 9470 challenge
    refused = [e for e in audit(env, "step_up.challenged") if e.details["permission"] == (
        "me.factors.enroll")]  # fmt: skip
    assert refused
    assert refused[-1].reason == "authentication_too_old"
    assert not audit(env, "factor.enrolled")[1:]  # only the set-up's own factor


def test_factor_added_in_a_session_cannot_satisfy_that_sessions_step_up(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    fresh = bearer(env.full_login(secret)["access_token"])
    activated, new_secret = enrol_totp(env, fresh)  # a recent proof: allowed
    assert activated.status_code == 200, activated.text
    assert new_secret is not None
    env.clock.advance(301)
    env.next_step()

    started = env.client.post("/auth/step-up", headers=fresh)
    assert started.status_code == 200, started.text
    url = f"/auth/login/{started.json()['transaction_id']}/verify"
    with_new = env.client.post(
        url, json={"method": "totp", "code": pyotp.TOTP(new_secret).at(env.clock.now())}
    )
    assert with_new.status_code == 401, "the factor this session added satisfied its step-up"
    assert with_new.json()["code"] == "invalid_code"
    with_old = env.client.post(url, json={"method": "totp", "code": env.totp_now(secret)})
    assert with_old.status_code == 200, with_old.text  # the factor the account already had
    assert audit(env, "step_up.failure")[-1].reason == "invalid_code"
    assert audit(env, "step_up.success")


def test_recovery_codes_made_in_a_session_cannot_satisfy_that_sessions_step_up(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    fresh = bearer(env.full_login(secret)["access_token"])
    made = env.client.post("/me/recovery-codes", headers=fresh)
    assert made.status_code == 200, made.text
    codes = made.json()["codes"]
    env.clock.advance(301)

    started = env.client.post("/auth/step-up", headers=fresh).json()
    assert "recovery_code" not in started["methods"]  # not offered to this session
    spent = env.client.post(
        f"/auth/login/{started['transaction_id']}/verify",
        json={"method": "recovery_code", "code": codes[0]},
    )
    assert spent.status_code in {401, 422}, "recovery codes this session made satisfied its step-up"
    # The same codes still work for a sign-in (they are the owner's sheet).
    tx = env.login().json()
    signed_in = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "recovery_code", "code": codes[1]},
    )
    assert signed_in.status_code == 200, signed_in.text


def _pending_factor(env: Env, auth: dict[str, str]) -> str:
    enrolled = env.client.post("/me/factors/totp", headers=auth)
    assert enrolled.status_code == 201, enrolled.text
    factor_id: str = enrolled.json()["factor_id"]
    return factor_id


@pytest.mark.parametrize("change", ["activate", "remove", "recovery_codes", "password"])
def test_stale_token_cannot_change_how_the_account_signs_in(env: Env, change: str) -> None:
    secret, _ = env.enrolled_admin()
    tokens = env.full_login(secret)
    auth = bearer(tokens["access_token"])
    pending = _pending_factor(env, auth)
    active = next(f["id"] for f in env.client.get("/me/factors", headers=auth).json()
                  if f["status"] == "active")  # fmt: skip
    env.clock.advance(301)
    client = env.client
    response = {
        "activate": lambda: client.post(
            f"/me/factors/totp/{pending}/activate", headers=auth, json={"code": "123456"}
        ),
        "remove": lambda: client.delete(f"/me/factors/{active}", headers=auth),
        "recovery_codes": lambda: client.post("/me/recovery-codes", headers=auth),
        "password": lambda: client.post(
            "/me/password",
            headers=auth,
            json={"current_password": ADMIN_PASSWORD, "new_password": NEW_PASSWORD},
        ),
    }[change]()
    challenge(response)
    assert audit(env, "step_up.challenged")[-1].reason == "authentication_too_old"


def test_enrolment_session_still_sets_up_the_first_factor_at_its_own_pace(env: Env) -> None:
    restricted = env.login().json()
    assert restricted["status"] == "enrollment_required"
    thief = bearer(env.login().json()["access_token"])
    auth = bearer(restricted["access_token"])
    enrolled = env.client.post("/me/factors/totp", headers=auth).json()
    env.clock.advance(400)  # longer than the recent-proof window: set-up is the exception
    activated = env.client.post(
        f"/me/factors/totp/{enrolled['factor_id']}/activate",
        headers=auth,
        json={"code": env.totp_now(enrolled["secret"])},
    )
    assert activated.status_code == 200, activated.text
    made = env.client.post("/me/recovery-codes", headers=auth)
    assert made.status_code == 200, made.text
    # Another enrolment token of the same password (a thief's) cannot add one now.
    assert env.client.post("/me/factors/totp", headers=thief).status_code == 401


def test_factor_changes_are_listed_with_where_from_and_notified(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    secret, _ = env.enrolled_admin()
    tokens = env.full_login(secret)
    auth = {**bearer(tokens["access_token"]), "User-Agent": "attack-test/1.0"}
    with caplog.at_level(logging.INFO, logger="bastion.notify"):
        activated, _ = enrol_totp(env, auth)
    assert activated.status_code == 200, activated.text
    listed = env.client.get("/me/factors", headers=auth).json()
    added = next(f for f in listed if f["name"] == "thief's phone")
    assert added["created_at"]
    assert added["added_from"] == {
        "ip": "testclient",
        "user_agent": "attack-test/1.0",
        "session_id": tokens_session(env, tokens["access_token"]),
    }
    enrolled = audit(env, "factor.enrolled")[-1]
    assert enrolled.details["session_id"] == added["added_from"]["session_id"]
    assert enrolled.details["user_agent"] == "attack-test/1.0"
    notices = [r.getMessage() for r in caplog.records if r.name == "bastion.notify"]
    assert any("factor.enrolled" in n for n in notices), notices
    assert any("factor.activated" in n for n in notices), notices


def tokens_session(env: Env, token: str) -> str:
    session_id: str | None = runtime_of(env).verify_access_token(token).session_id
    assert session_id is not None
    return session_id


def test_password_change_needs_the_current_password_and_ends_other_sessions(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    other = env.full_login(secret)
    mine = env.full_login(secret)
    auth = bearer(mine["access_token"])
    wrong = env.client.post(
        "/me/password",
        headers=auth,
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 403, wrong.text
    assert wrong.json()["code"] == "invalid_current_password"
    weak = env.client.post(
        "/me/password",
        headers=auth,
        json={"current_password": ADMIN_PASSWORD, "new_password": "password1"},
    )
    assert weak.status_code == 422, weak.text
    assert weak.json()["code"] == "weak_password"
    changed = env.client.post(
        "/me/password",
        headers=auth,
        json={"current_password": ADMIN_PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["sessions_revoked"] >= 1
    env.clock.advance(1)
    assert env.client.get("/me", headers=bearer(other["access_token"])).status_code == 401
    assert env.client.get("/me", headers=auth).status_code == 200  # this session stays
    assert env.login("admin", ADMIN_PASSWORD).status_code == 401
    assert env.login("admin", NEW_PASSWORD).json()["status"] == "mfa_required"
    events = audit(env, "user.password_changed")
    assert [e.outcome for e in events] == ["failure", "success"]
    assert events[-1].details["sessions_revoked"] >= 1
