"""Issue 13: every WebAuthn refusal through the real app, one attack per test, each
answered with a clear 4xx (never a 500) and recorded as ``webauthn.refused`` with its
reason. Recorded real-world payloads are in tests/unit/test_webauthn_recorded.py."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from bastion.factors.webauthn import b64url
from bastion.runtime import Runtime
from bastion.storage.schema import login_failures
from tests.admin.helpers import mint
from tests.http.webauthn_helpers import (
    actions,
    bearer,
    key_challenge,
    passkey_sign_in,
    register_key,
    signed_in_admin,
    verify_key,
)
from tests.support.app import Env
from tests.support.authenticator import KeyPair, SoftAuthenticator
from tests.support.webauthn import ORIGIN

EVIL = "https://bastion.evil.example"


def refused_registration(response: Any, reason: str, env: Env) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == reason
    assert actions(env, "webauthn.refused")[-1].reason == reason
    assert actions(env, "webauthn.registered") == []


def refused_assertion(response: Any, reason: str, env: Env) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_code"
    assert response.json()["reason"] == reason
    assert actions(env, "webauthn.refused")[-1].reason == reason
    assert actions(env, "login.failure")[-1].reason == reason


def with_key(env: Env) -> SoftAuthenticator:
    _, tokens = signed_in_admin(env)
    key = SoftAuthenticator()
    assert register_key(env, bearer(tokens), key).status_code == 201
    return key


def login_tx(env: Env) -> tuple[str, dict[str, Any]]:
    tx = env.login().json()["transaction_id"]
    return tx, key_challenge(env, tx)


# -- registration -------------------------------------------------------------------------


def test_registration_from_a_phishing_origin_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    refused = register_key(env, bearer(tokens), SoftAuthenticator(), origin=EVIL)
    refused_registration(refused, "wrong_origin", env)


def test_registration_for_another_rp_id_hash_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    refused = register_key(env, bearer(tokens), SoftAuthenticator(), rp_id="evil.example")
    refused_registration(refused, "wrong_rp_id", env)


def test_replayed_registration_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    auth = bearer(tokens)
    options = env.client.post("/me/factors/webauthn/options", headers=auth).json()
    answer = {"credential": SoftAuthenticator().create(options, origin=ORIGIN), "name": "k"}
    assert env.client.post("/me/factors/webauthn", headers=auth, json=answer).status_code == 201
    replayed = env.client.post("/me/factors/webauthn", headers=auth, json=answer)
    assert replayed.status_code == 400
    assert replayed.json()["code"] == "challenge_expired"


def test_registration_with_a_challenge_of_an_older_options_call_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    auth = bearer(tokens)
    old = env.client.post("/me/factors/webauthn/options", headers=auth).json()
    env.client.post("/me/factors/webauthn/options", headers=auth)  # replaces it
    answer = {"credential": SoftAuthenticator().create(old, origin=ORIGIN), "name": "k"}
    refused = env.client.post("/me/factors/webauthn", headers=auth, json=answer)
    refused_registration(refused, "challenge_mismatch", env)


def test_registration_challenge_of_another_session_refused(env: Env) -> None:
    secret, tokens = signed_in_admin(env)
    options = env.client.post("/me/factors/webauthn/options", headers=bearer(tokens)).json()
    env.next_step()
    other = bearer(env.full_login(secret))
    answer = {"credential": SoftAuthenticator().create(options, origin=ORIGIN), "name": "k"}
    refused = env.client.post("/me/factors/webauthn", headers=other, json=answer)
    refused_registration(refused, "challenge_expired", env)


def test_registration_with_an_algorithm_not_offered_refused(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    def es384_label(self: KeyPair) -> bytes:  # a P-256 key labelled ES384 (-35)
        assert isinstance(self.private, ec.EllipticCurvePrivateKey)
        numbers = self.private.public_key().public_numbers()
        x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
        return cbor2.dumps({1: 2, 3: -35, -1: 1, -2: x, -3: y})

    _, tokens = signed_in_admin(env)
    monkeypatch.setattr(KeyPair, "cose", es384_label)
    refused = register_key(env, bearer(tokens), SoftAuthenticator())
    refused_registration(refused, "algorithm_not_allowed", env)


def test_duplicate_credential_id_of_another_user_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    taken = register_key(env, bearer(tokens), SoftAuthenticator(), credential_id=b"\x01" * 32)
    assert taken.status_code == 201
    other = mint(env, role="viewer", acr="aal2")
    refused = register_key(env, other.auth, SoftAuthenticator(), credential_id=b"\x01" * 32)
    assert refused.status_code == 400
    assert refused.json()["code"] == "duplicate_credential"
    assert actions(env, "webauthn.refused")[-1].actor == other.user_id


def test_duplicate_credential_id_of_the_same_user_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    key = SoftAuthenticator()
    assert register_key(env, bearer(tokens), key, credential_id=b"\x02" * 32).status_code == 201
    again = register_key(env, bearer(tokens), key, credential_id=b"\x02" * 32)
    assert again.status_code == 400
    assert again.json()["code"] == "duplicate_credential"


def test_registration_with_malformed_cbor_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    auth = bearer(tokens)
    options = env.client.post("/me/factors/webauthn/options", headers=auth).json()
    credential = SoftAuthenticator().create(options, origin=ORIGIN)
    credential["response"]["attestationObject"] = b64url(b"\xbf\xff\x00not cbor")
    refused = env.client.post(
        "/me/factors/webauthn", headers=auth, json={"credential": credential, "name": "k"}
    )
    refused_registration(refused, "malformed_credential", env)


def test_registration_with_malformed_client_data_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    auth = bearer(tokens)
    options = env.client.post("/me/factors/webauthn/options", headers=auth).json()
    credential = SoftAuthenticator().create(options, origin=ORIGIN)
    credential["response"]["clientDataJSON"] = b64url(b"{not json")
    refused = env.client.post(
        "/me/factors/webauthn", headers=auth, json={"credential": credential, "name": "k"}
    )
    refused_registration(refused, "malformed_credential", env)


def test_registration_that_is_not_an_object_is_a_422(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    auth = bearer(tokens)
    env.client.post("/me/factors/webauthn/options", headers=auth)
    refused = env.client.post(
        "/me/factors/webauthn", headers=auth, json={"credential": "x", "name": "k"}
    )
    assert refused.status_code == 422


# -- second factor ------------------------------------------------------------------------


def test_assertion_from_a_phishing_origin_refused(env: Env) -> None:
    key = with_key(env)
    tx, options = login_tx(env)
    refused_assertion(verify_key(env, tx, key.get(options, origin=EVIL)), "wrong_origin", env)


def test_assertion_for_another_rp_id_hash_refused(env: Env) -> None:
    key = with_key(env)
    tx, options = login_tx(env)
    answer = key.get(options, origin=ORIGIN, rp_id="evil.example")
    refused_assertion(verify_key(env, tx, answer), "wrong_rp_id", env)


def test_replayed_assertion_refused(env: Env) -> None:
    key = with_key(env)
    tx, options = login_tx(env)
    answer = key.get(options, origin=ORIGIN)
    assert verify_key(env, tx, answer).status_code == 200
    again, _ = login_tx(env)  # a new transaction with a new challenge
    refused_assertion(verify_key(env, again, answer), "challenge_mismatch", env)


def test_assertion_without_a_challenge_asked_refused(env: Env) -> None:
    key = with_key(env)
    tx, options = login_tx(env)
    answer = key.get(options, origin=ORIGIN)
    assert verify_key(env, tx, answer).status_code == 200
    again = env.login().json()["transaction_id"]  # no /challenge: nothing pending
    refused_assertion(verify_key(env, again, answer), "challenge_expired", env)


def test_assertion_answered_twice_on_one_challenge_refused(env: Env) -> None:
    key = with_key(env)
    tx, options = login_tx(env)
    first = key.get(options, origin=EVIL)
    refused_assertion(verify_key(env, tx, first), "wrong_origin", env)
    retried = key.get(options, origin=ORIGIN)  # the challenge was used by the refusal
    refused_assertion(verify_key(env, tx, retried), "challenge_expired", env)


def test_assertion_with_user_presence_clear_refused(env: Env) -> None:
    key = with_key(env)
    tx, options = login_tx(env)
    refused_assertion(
        verify_key(env, tx, key.get(options, origin=ORIGIN, up=False)), "user_not_present", env
    )


def test_cloned_key_counter_going_backwards_refused_and_audited(env: Env) -> None:
    key = with_key(env)
    tx, options = login_tx(env)
    assert verify_key(env, tx, key.get(options, origin=ORIGIN, sign_count=7)).status_code == 200
    tx, options = login_tx(env)
    answer = key.get(options, origin=ORIGIN, sign_count=3)  # the clone's own, lower count
    refused_assertion(verify_key(env, tx, answer), "counter_regression", env)
    assert actions(env, "webauthn.refused")[-1].details["suspicion"] == "possible_clone"


def test_device_bound_key_turning_backup_eligible_refused_and_audited(env: Env) -> None:
    key = with_key(env)
    tx, options = login_tx(env)
    answer = key.get(options, origin=ORIGIN, be=True, bs=True)
    refused_assertion(verify_key(env, tx, answer), "backup_eligibility_changed", env)
    event = actions(env, "webauthn.refused")[-1]
    assert event.details["suspicion"] == "backup_eligibility_changed"


def test_synced_passkey_claiming_to_be_device_bound_refused(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    passkey = SoftAuthenticator(backup_eligible=True, backup_state=True, counter_step=0)
    assert register_key(env, bearer(tokens), passkey).status_code == 201
    tx, options = login_tx(env)
    answer = passkey.get(options, origin=ORIGIN, be=False, bs=False)  # to reach aal3
    refused_assertion(verify_key(env, tx, answer), "backup_eligibility_changed", env)


def test_another_users_credential_refused(env: Env) -> None:
    with_key(env)
    other = mint(env, role="viewer", acr="aal2")
    theirs = SoftAuthenticator()
    assert register_key(env, other.auth, theirs).status_code == 201
    tx, options = login_tx(env)
    [credential_id] = list(theirs.credentials)
    answer = theirs.get(options, origin=ORIGIN, credential_id=credential_id)
    refused_assertion(verify_key(env, tx, answer), "unknown_credential", env)
    assert actions(env, "webauthn.refused")[-1].details["other_account"] is True


def test_assertion_with_malformed_authenticator_data_refused(env: Env) -> None:
    key = with_key(env)
    tx, options = login_tx(env)
    answer = key.get(options, origin=ORIGIN)
    answer["response"]["authenticatorData"] = b64url(b"\x00" * 5)
    refused_assertion(verify_key(env, tx, answer), "malformed_credential", env)


def test_assertion_with_malformed_client_data_refused(env: Env) -> None:
    key = with_key(env)
    tx, options = login_tx(env)
    answer = key.get(options, origin=ORIGIN)
    answer["response"]["clientDataJSON"] = b64url(b"\xff\xfe not utf-8")
    refused_assertion(verify_key(env, tx, answer), "malformed_credential", env)


def test_refused_assertions_count_on_the_transaction_like_wrong_codes(env: Env) -> None:
    key = with_key(env)
    tx = env.login().json()["transaction_id"]
    for attempt in range(5):
        options = key_challenge(env, tx)
        refused = verify_key(env, tx, key.get(options, origin=EVIL))
        assert refused.status_code == 401, (attempt, refused.text)
    dead = env.client.post(f"/auth/login/{tx}/challenge", json={"method": "webauthn"})
    assert dead.status_code == 401
    assert dead.json()["code"] == "invalid_transaction"
    failures = actions(env, "login.failure")
    # Not guessable: audited, but never counted across transactions (authn.guessing).
    assert failures[-1].details["failures"] == 0
    assert actions(env, "factor.locked") == []


def test_webauthn_needs_a_credential_not_a_code(env: Env) -> None:
    with_key(env)
    tx = env.login().json()["transaction_id"]
    refused = env.client.post(
        f"/auth/login/{tx}/verify", json={"method": "webauthn", "code": "123456"}
    )
    assert refused.status_code == 422


# -- passkeys ---------------------------------------------------------------------------


def passkey_refused(response: Any, reason: str, env: Env) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_credentials"  # the same for every refusal
    assert actions(env, "login.failure")[-1].reason == reason


def test_passkey_from_a_phishing_origin_refused(env: Env) -> None:
    key = with_key(env)
    passkey_refused(passkey_sign_in(env, key, origin=EVIL), "wrong_origin", env)


def test_passkey_with_an_expired_challenge_refused(env: Env) -> None:
    key = with_key(env)
    started = env.client.post("/auth/passkey/options").json()
    env.clock.advance(301)
    answer = key.get(started["options"], origin=ORIGIN)
    refused = env.client.post(
        "/auth/passkey/verify",
        json={"transaction_id": started["transaction_id"], "credential": answer},
    )
    passkey_refused(refused, "challenge_expired", env)


def test_replayed_passkey_sign_in_refused(env: Env) -> None:
    key = with_key(env)
    started = env.client.post("/auth/passkey/options").json()
    body = {
        "transaction_id": started["transaction_id"],
        "credential": key.get(started["options"], origin=ORIGIN),
    }
    assert env.client.post("/auth/passkey/verify", json=body).status_code == 200
    passkey_refused(env.client.post("/auth/passkey/verify", json=body), "challenge_expired", env)


def test_passkey_naming_another_account_refused(env: Env) -> None:
    key = with_key(env)
    other = mint(env, role="viewer", acr="aal2")
    answer = passkey_sign_in(env, key, user_handle=other.user_id.encode())
    passkey_refused(answer, "user_handle_mismatch", env)


def test_passkey_without_user_verification_refused(env: Env) -> None:
    key = with_key(env)
    passkey_refused(passkey_sign_in(env, key, uv=False), "user_not_verified", env)


def test_passkey_of_an_unknown_credential_refused(env: Env) -> None:
    with_key(env)
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
    passkey_refused(passkey_sign_in(env, stranger), "unknown_credential", env)


def test_passkey_of_a_suspended_user_refused(env: Env) -> None:
    key = with_key(env)
    admin = mint(env, acr="aal3")
    users = env.client.get("/admin/users", headers=admin.auth).json()["users"]
    target = next(u for u in users if u["username"] == "admin")
    suspended = env.client.patch(
        f"/admin/users/{target['id']}", headers=admin.auth, json={"status": "suspended"}
    )
    assert suspended.status_code == 200, suspended.text
    passkey_refused(passkey_sign_in(env, key), "user_suspended", env)


def test_passkey_with_an_unknown_transaction_is_the_generic_failure(env: Env) -> None:
    key = with_key(env)
    options = env.client.post("/auth/passkey/options").json()["options"]
    refused = env.client.post(
        "/auth/passkey/verify",
        json={"transaction_id": "ptx_forged", "credential": key.get(options, origin=ORIGIN)},
    )
    passkey_refused(refused, "challenge_expired", env)


def test_failed_passkey_sign_ins_count_on_the_address_throttle_only(env: Env) -> None:
    key = with_key(env)
    passkey_refused(passkey_sign_in(env, key, origin=EVIL), "wrong_origin", env)
    rt: Runtime = env.client.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.read() as conn:
        scopes = sorted(conn.execute(select(login_failures.c.scope)).scalars())
    # The address, like a wrong password; not the account: a credential id is no secret,
    # and a stranger must not throttle its owner's password sign-in with it.
    assert scopes == ["address"]
