"""Attacks on the adaptive sign-in (issue 15): spraying, forged client addresses,
stolen, expired and revoked remembered-device credentials."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text
from tests.admin.helpers import mint, runtime_of
from tests.support.app import Env
from tests.support.credentials import new_user
from tests.support.risk import BERLIN, LONDON, TOKYO
from tests.support.server import ADMIN_PASSWORD, Credentials, LiveServer

from bastion.audit import query
from bastion.authn.enrollment import Origin, activate_totp, enroll_totp
from bastion.authz import Policy
from bastion.factors.password import hash_password
from bastion.identity.rules import save_policy
from bastion.identity.tenants import tenant_by_name


class CountingHasher(PasswordHasher):
    """argon2's hasher, counting its verifications (a spy on the library, not on Bastion)."""

    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        CountingHasher.verified += 1
        return super().verify(hash, password)


def client_at(env: Env, address: str) -> TestClient:
    return TestClient(env.client.app, client=(address, 50000), raise_server_exceptions=False)


def counting(env: Env) -> type[CountingHasher]:
    rt = runtime_of(env)
    h = rt.hasher
    spy = CountingHasher(
        time_cost=h.time_cost,
        memory_cost=h.memory_cost,
        parallelism=h.parallelism,
        hash_len=h.hash_len,
        salt_len=h.salt_len,
        type=h.type,
    )
    rt.__dict__["authn"] = dataclasses.replace(rt.authn, hasher=spy)
    CountingHasher.verified = 0
    return CountingHasher


GUESS = "Winter2026!"  # what sprayers try


def sign_in(client: TestClient, username: str, password: str = GUESS) -> Any:
    return client.post("/auth/login", json={"username": username, "password": password})


def test_password_spraying_is_refused_before_argon2(env: Env) -> None:
    spy = counting(env)
    sprayer = client_at(env, TOKYO)
    for n in range(10):
        assert sign_in(sprayer, f"guess-{n}").status_code == 401
    assert spy.verified == 10
    for n in range(10, 50):
        refused = sign_in(sprayer, f"guess-{n}")
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) > 0
    # the right password of a real user from the spraying address: refused the same way
    assert sign_in(sprayer, "admin", ADMIN_PASSWORD).status_code == 429
    assert spy.verified == 10  # not one hash for the 41 refused attempts
    # the refusals are recorded (counted, one event per limit, address and second)
    env.client.app.state.audit_buffer.flush()
    with runtime_of(env).db.read() as conn:
        events = query(conn, tenant_id=None, action="login.failure", limit=1000).events
    throttled = [e for e in events if e.reason == "rate_limited"]
    assert throttled
    assert all(e.details["scope"] == "spraying" for e in throttled)
    assert sum(e.details["attempts"] for e in throttled) == 41
    # another address signs in as usual
    assert sign_in(client_at(env, BERLIN), "admin", ADMIN_PASSWORD).status_code == 200


def block_london_in_default_tenant(server: Credentials) -> None:
    rt = server._runtime()
    try:
        with rt.db.begin() as conn:
            tenant = tenant_by_name(conn, "default")
            assert tenant is not None
            document = {"risk": {"networks": {"blocked": ["81.2.69.0/24"]}}}
            save_policy(conn, tenant.id, Policy.from_document(document), now=rt.clock.now())
    finally:
        rt.close()


def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored_by_the_risk_engine(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """No trusted proxy is configured: a client cannot place itself in a blocked network
    (to get a victim refused), nor escape the spraying limit by inventing addresses."""
    block_london_in_default_tenant(live_server)
    name = live_server.user(username="forged-xff")
    signed_in = httpx.post(
        f"{live_server.url}/auth/login",
        json={"username": name, "password": ADMIN_PASSWORD},
        headers={"X-Forwarded-For": LONDON},
    )
    assert signed_in.status_code == 200, signed_in.text  # scored from 127.0.0.1, not London
    codes = [
        httpx.post(
            f"{live_server.url}/auth/login",
            json={"username": f"sprayed-{n}", "password": GUESS},
            headers={"X-Forwarded-For": f"{TOKYO.rsplit('.', 1)[0]}.{n + 1}"},
        ).status_code
        for n in range(12)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429, 429]  # one peer, whatever addresses it names


# -- remembered-device credentials ------------------------------------------------------


def enrolled_user(env: Env, username: str) -> str:
    """A user with a password and an active TOTP factor; the TOTP secret."""
    rt = runtime_of(env)
    with rt.db.begin() as conn:
        now = env.clock.now()
        user = new_user(
            conn,
            roles=["viewer"],
            username=username,
            password_hash=hash_password(ADMIN_PASSWORD, hasher=rt.hasher),
            now=now,
        )
        started = enroll_totp(
            conn, rt.sealer, user_id=user.id, account_name=username, name="phone", now=now,
            origin=Origin(session_id=None),
        )  # fmt: skip
        activate_totp(
            conn,
            rt.sealer,
            user_id=user.id,
            factor_id=started.factor_id,
            code=env.totp_now(started.secret),
            now=now,
        )
    env.next_step()
    return started.secret


def remembered(env: Env, username: str, secret: str) -> str:
    tx = sign_in(env.client, username, ADMIN_PASSWORD).json()
    verified = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret), "remember_device": True},
    )
    env.next_step()
    credential: str = verified.json()["device_credential"]
    return credential


def with_device(env: Env, username: str, credential: str) -> Any:
    return env.client.post(
        "/auth/login",
        json={"username": username, "password": ADMIN_PASSWORD, "device_id": credential},
    )


def test_stolen_device_credential_of_one_user_is_no_factor_for_another(env: Env) -> None:
    alice = enrolled_user(env, "alice")
    enrolled_user(env, "bob")
    stolen = remembered(env, "alice", alice)
    assert with_device(env, "alice", stolen).json()["status"] == "authenticated"
    # Bob's password (known to the thief) with Alice's device: the second factor is asked
    attempt = with_device(env, "bob", stolen)
    assert attempt.status_code == 200
    assert attempt.json()["status"] == "mfa_required"
    env.client.app.state.audit_buffer.flush()
    with runtime_of(env).db.read() as conn:
        asked = query(conn, tenant_id=None, action="login.mfa_required", limit=100).events
    (bob,) = [e for e in asked if e.details["username"] == "bob"]
    device = [r for r in bob.details["risk_reasons"] if r["reason"].startswith("device_")]
    assert device == [{"reason": "device_unknown", "weight": 15, "presented": True}]


def test_expired_device_credential_is_no_factor(env: Env) -> None:
    secret = enrolled_user(env, "carol")
    credential = remembered(env, "carol", secret)
    env.clock.advance(30 * 86_400 + 1)
    assert with_device(env, "carol", credential).json()["status"] == "mfa_required"


def test_revoked_device_credential_is_no_factor(env: Env) -> None:
    secret = enrolled_user(env, "dave")
    credential = remembered(env, "dave", secret)
    token = with_device(env, "dave", credential).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    (device,) = env.client.get("/me/devices", headers=auth).json()
    assert env.client.delete(f"/me/devices/{device['id']}", headers=auth).status_code == 204
    refused = with_device(env, "dave", credential)
    assert refused.json()["status"] == "mfa_required"
    assert refused.json()["risk"]["level"] == "medium"


def test_forged_device_credential_is_no_factor(env: Env) -> None:
    secret = enrolled_user(env, "erin")
    real = remembered(env, "erin", secret)
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    for presented in (forged, "bst_dev_" + "A" * 43, "not-a-credential", "x" * 128):
        assert with_device(env, "erin", presented).json()["status"] == "mfa_required"


# -- a remembered device dies with the credentials that earned it ---------------------------

NEW_PASSWORD = "correct horse battery staple 2026"


def remembered_signed_in(env: Env, username: str) -> tuple[str, dict[str, str]]:
    """A full TOTP sign-in that remembers the device: (device credential, auth header)."""
    secret = enrolled_user(env, username)
    tx = sign_in(env.client, username, ADMIN_PASSWORD).json()
    verified = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret), "remember_device": True},
    ).json()
    env.next_step()
    auth = {"Authorization": f"Bearer {verified['access_token']}"}
    assert with_device(env, username, verified["device_credential"]).json()["status"] == (
        "authenticated"
    )
    return verified["device_credential"], auth


def device_revocations(env: Env) -> list[Any]:
    env.client.app.state.audit_buffer.flush()
    with runtime_of(env).db.read() as conn:
        return query(conn, tenant_id=None, action="device.revoked", limit=100).events


def test_device_remembered_before_a_password_change_is_no_factor_after_it(env: Env) -> None:
    """The thief who had the password and a remembered device: the owner changes the
    password; the device credential earned with the old one no longer stands in for a
    factor (with the new password it asks for the second factor, level medium)."""
    credential, auth = remembered_signed_in(env, "frank")
    change = {"current_password": ADMIN_PASSWORD, "new_password": NEW_PASSWORD}
    changed = env.client.post("/me/password", headers=auth, json=change)
    assert changed.status_code == 200, changed.text
    assert changed.json()["devices_revoked"] == 1
    again = env.client.post(
        "/auth/login",
        json={"username": "frank", "password": NEW_PASSWORD, "device_id": credential},
    )
    assert again.json()["status"] == "mfa_required"
    assert again.json()["risk"]["level"] == "medium"  # device_revoked
    (revoked,) = device_revocations(env)
    assert revoked.reason == "password_changed"
    assert revoked.details["count"] == 1


def test_device_remembered_before_sign_out_everywhere_is_no_factor_after_it(env: Env) -> None:
    credential, auth = remembered_signed_in(env, "grace")
    other = with_device(env, "grace", credential).json()  # another live session
    done = env.client.delete("/me/sessions", headers=auth)
    assert done.status_code == 200, done.text
    assert done.json()["devices_revoked"] == 1
    assert done.json()["sessions_revoked"] >= 2  # this session and the other one
    for token in (auth["Authorization"].split()[1], other["access_token"]):
        me = env.client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
    assert with_device(env, "grace", credential).json()["status"] == "mfa_required"
    (revoked,) = device_revocations(env)
    assert revoked.reason == "signed_out_everywhere"
    env.client.app.state.audit_buffer.flush()
    with runtime_of(env).db.read() as conn:
        ended = query(conn, tenant_id=None, action="session.revoked", limit=100).events
    assert [e.reason for e in ended] == ["signed_out_everywhere"]


def test_device_of_a_suspended_user_is_no_factor_after_reactivation(env: Env) -> None:
    credential, auth = remembered_signed_in(env, "heidi")
    user_id = env.client.get("/me", headers=auth).json()["id"]
    admin = mint(env)
    for status in ("suspended", "active"):
        patched = env.client.patch(
            f"/admin/users/{user_id}", headers=admin.auth, json={"status": status}
        )
        assert patched.status_code == 200, patched.text
    assert with_device(env, "heidi", credential).json()["status"] == "mfa_required"
    (revoked,) = device_revocations(env)
    assert revoked.reason == "user_suspended"
    assert revoked.actor == admin.user_id


# -- wrong second-factor codes feed the risk engine ------------------------------------------


def audit_events(env: Env, action: str) -> list[Any]:
    env.client.app.state.audit_buffer.flush()
    with runtime_of(env).db.read() as conn:
        return query(conn, tenant_id=None, action=action, limit=100, newest_first=True).events


def guess_codes(client: TestClient, transaction_id: str, count: int) -> None:
    for n in range(count):
        wrong = client.post(
            f"/auth/login/{transaction_id}/verify",
            json={"method": "totp", "code": f"{n:06d}"},
        )
        assert wrong.status_code == 401
        assert wrong.json()["code"] == "invalid_code"


def test_second_factor_guessing_raises_the_next_sign_ins_risk(env: Env) -> None:
    """A thief with the password guesses TOTP codes: each wrong code is a failed sign-in
    to the risk engine, so the next sign-in (even the owner's) is scored higher."""
    secret = enrolled_user(env, "ivan")
    berlin = client_at(env, BERLIN)
    tx = sign_in(berlin, "ivan", ADMIN_PASSWORD).json()
    assert tx["risk"]["level"] == "low"
    done = berlin.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    )
    assert done.status_code == 200, done.text
    env.next_step()
    before = sign_in(berlin, "ivan", ADMIN_PASSWORD).json()
    assert before["risk"]["level"] == "low"

    guess_codes(berlin, before["transaction_id"], 5)  # the transaction dies at 5
    after = sign_in(berlin, "ivan", ADMIN_PASSWORD).json()
    assert after["status"] == "mfa_required"
    assert after["risk"]["level"] == "medium"
    asked = audit_events(env, "login.mfa_required")[0]
    assert "user_failures" in {r["reason"] for r in asked.details["risk_reasons"]}
    with runtime_of(env).db.read() as conn:
        flagged = conn.execute(
            text("SELECT count(*) FROM risk_events WHERE outcome = 'failure' AND ip = :ip"),
            {"ip": BERLIN},
        ).scalar_one()
    assert flagged == 5


def failures_floor(env: Env, floor: str) -> None:
    """The tenant's policy: a burst of failures of a user floors their next decision."""
    rt = runtime_of(env)
    with rt.db.begin() as conn:
        tenant = tenant_by_name(conn, "default")
        assert tenant is not None
        document = {"risk": {"reasons": {"user_failures": {"weight": 15, "floor": floor}}}}
        save_policy(conn, tenant.id, Policy.from_document(document), now=rt.clock.now())


def test_step_up_after_second_factor_guessing_is_refused_and_recorded(env: Env) -> None:
    """A stolen session guesses step-up codes: each wrong code counts, and once the risk
    engine asks for a phishing-resistant factor the TOTP-only user cannot step up at
    all (401 step_up_refused, no reasons to the client; step_up.failure with them)."""
    failures_floor(env, "phishing_resistant")
    secret = enrolled_user(env, "judy")
    tx = sign_in(env.client, "judy", ADMIN_PASSWORD).json()
    tokens = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    ).json()
    env.next_step()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    started = env.client.post("/auth/step-up", headers=auth, json={"acr_values": "aal2"})
    assert started.status_code == 200, started.text
    assert started.json()["methods"] == ["totp"]
    (scored,) = audit_events(env, "step_up.started")
    assert scored.details["risk_level"] == "low"
    guess_codes(env.client, started.json()["transaction_id"], 5)
    assert len(audit_events(env, "step_up.failure")) == 5

    refused = env.client.post("/auth/step-up", headers=auth, json={"acr_values": "aal2"})
    assert refused.status_code == 401
    assert refused.json()["code"] == "step_up_refused"
    assert "user_failures" not in refused.text  # the reasons stay in the audit log
    denied = audit_events(env, "step_up.failure")[0]
    assert denied.outcome == "denied"
    assert denied.reason == "risk_no_factor"
    assert "user_failures" in {r["reason"] for r in denied.details["risk_reasons"]}


def test_step_up_the_risk_engine_denies_is_refused(env: Env) -> None:
    failures_floor(env, "deny")
    secret = enrolled_user(env, "kim")
    tx = sign_in(env.client, "kim", ADMIN_PASSWORD).json()
    tokens = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    ).json()
    env.next_step()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    started = env.client.post("/auth/step-up", headers=auth).json()
    guess_codes(env.client, started["transaction_id"], 5)
    refused = env.client.post("/auth/step-up", headers=auth)
    assert refused.status_code == 401
    assert refused.json()["code"] == "step_up_refused"
    denied = audit_events(env, "step_up.failure")[0]
    assert (denied.outcome, denied.reason) == ("denied", "risk_denied")
