"""The risk engine with security keys and passkeys (issue 15): a high score offers and
accepts only a phishing-resistant factor; a passkey sign-in is scored too."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from bastion.authz import Policy
from bastion.factors.webauthn import b64url, b64url_decode
from bastion.identity.rules import save_policy
from bastion.identity.tenants import tenant_by_name
from tests.admin.helpers import runtime_of
from tests.http.webauthn_helpers import (
    actions,
    bearer,
    key_challenge,
    register_key,
    signed_in_admin,
)
from tests.support.app import Env
from tests.support.authenticator import SoftAuthenticator
from tests.support.risk import LONDON, PARIS, SYDNEY, TOKYO
from tests.support.server import ADMIN_PASSWORD
from tests.support.webauthn import ORIGIN

EVIL = "https://bastion.evil.example"


def client_at(env: Env, address: str) -> TestClient:
    return TestClient(env.client.app, client=(address, 50000), raise_server_exceptions=False)


def default_policy(env: Env, risk: dict[str, Any]) -> None:
    rt = runtime_of(env)
    with rt.db.begin() as conn:
        tenant = tenant_by_name(conn, "default")
        assert tenant is not None
        save_policy(conn, tenant.id, Policy.from_document({"risk": risk}), now=env.clock.now())


def test_impossible_travel_asks_for_a_security_key_only(env: Env) -> None:
    secret, tokens = signed_in_admin(env)
    key = SoftAuthenticator()
    assert register_key(env, bearer(tokens), key).status_code == 201
    default_policy(env, {"thresholds": {"deny": 150}})  # this tenant steps up rather than deny
    paris = client_at(env, PARIS)
    tx = paris.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()
    done = paris.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    )
    assert done.status_code == 200, done.text
    env.next_step()
    env.clock.advance(600)

    sydney = client_at(env, SYDNEY)
    asked = sydney.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    body = asked.json()
    assert body["status"] == "mfa_required"
    assert body["risk"] == {"level": "high"}
    assert body["methods"] == ["webauthn"]  # no TOTP, no recovery code: they can be phished
    by_code = sydney.post(
        f"/auth/login/{body['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    )
    assert by_code.status_code == 422
    assert by_code.json()["code"] == "method_not_available"
    options = key_challenge(env, body["transaction_id"])
    verified = sydney.post(
        f"/auth/login/{body['transaction_id']}/verify",
        json={"method": "webauthn", "credential": key.get(options, origin=ORIGIN)},
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["acr"] == "aal3"
    success = actions(env, "login.success")[-1]
    assert "impossible_travel" in {r["reason"] for r in success.details["risk_reasons"]}


def test_a_passkey_sign_in_from_a_blocked_network_is_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    key = SoftAuthenticator()
    assert register_key(env, bearer(tokens), key).status_code == 201
    default_policy(env, {"networks": {"blocked": ["81.2.69.0/24"]}})
    london = client_at(env, LONDON)
    started = london.post("/auth/passkey/options").json()
    refused = london.post(
        "/auth/passkey/verify",
        json={
            "transaction_id": started["transaction_id"],
            "credential": key.get(started["options"], origin=ORIGIN),
        },
    )
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_credentials"
    event = actions(env, "login.failure")[-1]
    assert event.reason == "risk_denied"
    assert event.outcome == "denied"
    assert "network_blocked" in {r["reason"] for r in event.details["risk_reasons"]}
    # from elsewhere the same passkey signs in, and the sign-in is scored and recorded
    paris = client_at(env, PARIS)
    started = paris.post("/auth/passkey/options").json()
    signed_in = paris.post(
        "/auth/passkey/verify",
        json={
            "transaction_id": started["transaction_id"],
            "credential": key.get(started["options"], origin=ORIGIN),
        },
    )
    assert signed_in.status_code == 200, signed_in.text
    assert "risk_level" in actions(env, "login.success")[-1].details


def test_refused_key_assertions_are_failed_sign_ins_to_the_risk_engine(env: Env) -> None:
    """A phishing page relays the password, but the key's answer names the wrong origin:
    each refused assertion is a failed sign-in of the user (``user_failures`` then
    raises the next sign-in's risk), as a wrong code is."""
    _, tokens = signed_in_admin(env)
    key = SoftAuthenticator()
    assert register_key(env, bearer(tokens), key).status_code == 201
    paris = client_at(env, PARIS)
    for _ in range(5):
        tx = paris.post(
            "/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ).json()
        options = key_challenge(env, tx["transaction_id"])
        phished = key.get(options, origin="https://bastion.example.evil")
        refused = paris.post(
            f"/auth/login/{tx['transaction_id']}/verify",
            json={"method": "webauthn", "credential": phished},
        )
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_code"
        env.next_step()
    failures = [e for e in actions(env, "login.failure") if e.reason == "wrong_origin"]
    assert len(failures) == 5
    after = paris.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    asked = [e for e in actions(env, "login.mfa_required")][-1]
    assert "user_failures" in {r["reason"] for r in asked.details["risk_reasons"]}
    assert after.json()["status"] == "mfa_required"


def forged(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer with its signature's last byte flipped (the thief has no private key)."""
    signature = bytearray(b64url_decode(answer["response"]["signature"]))
    signature[-1] ^= 0xFF
    return {**answer, "response": {**answer["response"], "signature": b64url(bytes(signature))}}


def passkey_answer_from(
    client: TestClient, key: SoftAuthenticator, *, origin: str = ORIGIN, bad_signature: bool = False
) -> Any:
    started = client.post("/auth/passkey/options").json()
    answer = key.get(started["options"], origin=origin)
    return client.post(
        "/auth/passkey/verify",
        json={
            "transaction_id": started["transaction_id"],
            "credential": forged(answer) if bad_signature else answer,
        },
    )


def stranger_key() -> SoftAuthenticator:
    stranger = SoftAuthenticator()
    stranger.create(
        {
            "rp": {"id": "localhost"},
            "user": {"id": b64url(b"usr_x")},
            "challenge": b64url(b"\x00" * 32),
            "authenticatorSelection": {"residentKey": "required"},
        },
        origin=ORIGIN,
    )
    return stranger


def test_passkey_answer_stuffing_with_unknown_credentials_worsens_the_address_reputation(
    env: Env,
) -> None:
    """A bot replays passkey answers of credentials Bastion never saw, from one address:
    no user can be told, but each refusal is a failure of the network, so the next sign-in
    from there carries ``address_reputation`` (and one from elsewhere does not)."""
    signed_in_admin(env)
    default_policy(env, {"velocity": {"reputation_failures": 5}})
    bot = client_at(env, TOKYO)
    stranger = stranger_key()
    for _ in range(5):
        refused = passkey_answer_from(bot, stranger)
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_credentials"
        assert actions(env, "login.failure")[-1].reason == "unknown_credential"
    bot.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    from_bot = actions(env, "login.mfa_required")[-1].details["risk_reasons"]
    assert "address_reputation" in {r["reason"] for r in from_bot}
    client_at(env, PARIS).post(
        "/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    elsewhere = actions(env, "login.mfa_required")[-1].details["risk_reasons"]
    assert "address_reputation" not in {r["reason"] for r in elsewhere}
    assert "user_failures" not in {r["reason"] for r in elsewhere}  # nobody's account named


def test_passkey_answers_forged_for_a_stolen_credential_id_count_against_its_user(
    env: Env,
) -> None:
    """The thief knows the victim's credential id (it is no secret) but not the key: bad
    signatures and phished origins are failures of that user, so ``user_failures`` raises
    the victim's next sign-in to a second factor's level; the account throttle is not
    touched (a stranger must not lock its owner out with a credential id)."""
    _, tokens = signed_in_admin(env)
    key = SoftAuthenticator()
    assert register_key(env, bearer(tokens), key).status_code == 201
    env.next_step()
    thief = client_at(env, TOKYO)
    for n in range(5):
        refused = passkey_answer_from(
            thief, key, bad_signature=n % 2 == 0, origin=ORIGIN if n % 2 == 0 else EVIL
        )
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_credentials"
    reasons = [e.reason for e in actions(env, "login.failure")[-5:]]
    assert set(reasons) == {"invalid_signature", "wrong_origin"}, reasons
    after = client_at(env, PARIS).post(
        "/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert after.status_code == 200, after.text
    assert after.json()["risk"] != {"level": "low"}
    asked = actions(env, "login.mfa_required")[-1].details["risk_reasons"]
    assert "user_failures" in {r["reason"] for r in asked}
