"""Usual hours learned from history (issue 15), with the clock the test moves: a user who
always signs in around 9:00 UTC signing in at 3:00 is asked for a second factor."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from bastion.authn.enrollment import Origin, activate_totp, enroll_totp
from bastion.authz import Policy
from bastion.factors.password import hash_password
from bastion.identity.rules import save_policy
from tests.admin.helpers import events, mint, runtime_of
from tests.support.app import Env
from tests.support.credentials import new_user
from tests.support.risk import PARIS
from tests.support.server import ADMIN_PASSWORD


def test_a_sign_in_far_from_the_usual_hours_needs_a_second_factor(env: Env) -> None:
    rt = runtime_of(env)
    with rt.db.begin() as conn:
        now = env.clock.now()
        user = new_user(
            conn,
            roles=["developer"],
            tenant="early-birds",
            username="nine-to-five",
            password_hash=hash_password(ADMIN_PASSWORD, hasher=rt.hasher),
            now=now,
        )
        document = {"mfa_required": False, "password_min_length": 15}
        save_policy(conn, user.tenant_id, Policy.from_document(document), now=now)
        started = enroll_totp(
            conn, rt.sealer, user_id=user.id, account_name=user.username, name="phone",
            now=now, origin=Origin(session_id=None),
        )  # fmt: skip
        activate_totp(
            conn, rt.sealer, user_id=user.id, factor_id=started.factor_id,
            code=env.totp_now(started.secret), now=now,
        )  # fmt: skip
    paris = TestClient(env.client.app, client=(PARIS, 50000), raise_server_exceptions=False)
    body = {"username": "nine-to-five", "password": ADMIN_PASSWORD}
    # twelve mornings at 9:00 UTC: a password alone is enough (the policy's minimum)
    start = env.clock.now().replace(hour=9, minute=0) + timedelta(days=1)
    env.clock.advance((start - env.clock.now()).total_seconds())
    for day in range(12):
        answer = paris.post("/auth/login", json=body).json()
        assert answer["status"] == "authenticated", (day, answer)
        env.clock.advance(86_400)
    env.clock.advance(-6 * 3600)  # 3:00 UTC
    asked = paris.post("/auth/login", json=body).json()
    assert asked["status"] == "mfa_required"
    assert asked["risk"] == {"level": "medium"}
    admin = mint(env)
    (event,) = events(env, admin, action="login.mfa_required")
    reasons = {r["reason"]: r for r in event["details"]["risk_reasons"]}
    assert reasons["hours_unusual"]["hour"] == 3
