"""Issue 13: security keys and passkeys through the real app (in-process ASGI, real
SQLite, a software authenticator): register, second factor, step-up to aal3 and export,
passwordless passkeys, list / rename / remove."""

from __future__ import annotations

from tests.http.webauthn_helpers import (
    actions,
    bearer,
    key_challenge,
    passkey_sign_in,
    register_key,
    sign_in_with_key,
    signed_in_admin,
    verify_key,
)
from tests.support.app import Env
from tests.support.authenticator import SoftAuthenticator
from tests.support.webauthn import ORIGIN


def test_register_a_security_key_and_list_it(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    registered = register_key(env, bearer(tokens), SoftAuthenticator(), name="YubiKey 5")
    assert registered.status_code == 201, registered.text
    factor = registered.json()["factor"]
    assert factor["type"] == "webauthn"
    assert factor["name"] == "YubiKey 5"
    assert factor["added_from"]["session_id"] is not None  # provenance, as for TOTP
    assert factor["device_bound"] is True  # BE = 0: it can reach aal3
    listed = env.client.get("/me/factors", headers=bearer(tokens)).json()
    assert [f["name"] for f in listed if f["type"] == "webauthn"] == ["YubiKey 5"]
    assert "public_key" not in str(listed)
    [event] = actions(env, "webauthn.registered")
    assert event.details["backup_eligible"] is False
    assert event.details["factor_id"] == factor["id"]


def test_registration_options_carry_a_fresh_challenge_and_exclude_known_keys(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    auth = bearer(tokens)
    first = env.client.post("/me/factors/webauthn/options", headers=auth).json()
    assert len(first["challenge"]) >= 22  # ≥ 16 bytes, base64url
    assert first["rp"]["id"] == "localhost"
    assert first["excludeCredentials"] == []
    assert register_key(env, auth, SoftAuthenticator()).status_code == 201
    second = env.client.post("/me/factors/webauthn/options", headers=auth).json()
    assert second["challenge"] != first["challenge"]
    assert len(second["excludeCredentials"]) == 1


def test_registration_needs_a_recent_proof_as_totp_enrolment_does(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    env.clock.advance(301)  # policy max_age 300 of me.factors.enroll
    stale = env.client.post("/me/factors/webauthn/options", headers=bearer(tokens))
    assert stale.status_code == 401
    assert "insufficient_user_authentication" in stale.headers["www-authenticate"]
    assert "max_age=300" in stale.headers["www-authenticate"]


def test_a_first_factor_can_be_a_security_key_in_the_enrolment_session(env: Env) -> None:
    restricted = env.login().json()
    assert restricted["status"] == "enrollment_required"
    key = SoftAuthenticator()
    assert register_key(env, bearer(restricted), key).status_code == 201
    signed_in = sign_in_with_key(env, key)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["acr"] == "aal3"


def test_password_and_device_bound_key_reach_aal3(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    key = SoftAuthenticator()
    assert register_key(env, bearer(tokens), key).status_code == 201
    signed_in = sign_in_with_key(env, key, uv=False)  # a plain key without a PIN
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert body["acr"] == "aal3"
    assert sorted(body["amr"]) == ["hwk", "mfa", "pwd", "user"]


def test_synced_passkey_as_second_factor_is_aal2_at_most(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    passkey = SoftAuthenticator(backup_eligible=True, backup_state=True, counter_step=0)
    assert register_key(env, bearer(tokens), passkey).status_code == 201
    signed_in = sign_in_with_key(env, passkey)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["acr"] == "aal2"
    assert "swk" in signed_in.json()["amr"]
    listed = env.client.get("/me/factors", headers=bearer(signed_in.json())).json()
    assert [f["device_bound"] for f in listed if f["type"] == "webauthn"] == [False]


def test_step_up_to_aal3_with_a_device_bound_key_then_export(env: Env) -> None:
    secret, tokens = signed_in_admin(env)
    key = SoftAuthenticator()
    assert register_key(env, bearer(tokens), key).status_code == 201
    env.next_step()
    tokens = env.full_login(secret)  # a new session at aal2 (TOTP)
    auth = bearer(tokens)
    made = env.client.put(
        "/collections/docs", headers=auth, json={"vectors": {"size": 2, "distance": "Dot"}}
    )
    assert made.status_code == 200, made.text
    refused = env.client.post("/collections/docs/export", headers=auth)
    assert refused.status_code == 401
    assert 'acr_values="aal3"' in refused.headers["www-authenticate"]
    started = env.client.post("/auth/step-up", headers=auth, json={"acr_values": "aal3"})
    assert started.status_code == 200, started.text
    assert started.json()["methods"] == ["webauthn"]
    tx = started.json()["transaction_id"]
    stepped = verify_key(env, tx, key.get(key_challenge(env, tx), origin=ORIGIN))
    assert stepped.status_code == 200, stepped.text
    assert stepped.json()["acr"] == "aal3"
    export = env.client.post("/collections/docs/export", headers=bearer(stepped.json()))
    assert export.status_code == 200, export.text


def test_synced_passkey_step_up_gets_aal2_and_export_stays_refused(env: Env) -> None:
    secret, tokens = signed_in_admin(env)
    passkey = SoftAuthenticator(backup_eligible=True, backup_state=True, counter_step=0)
    assert register_key(env, bearer(tokens), passkey).status_code == 201
    env.next_step()
    auth = bearer(env.full_login(secret))
    env.client.put(
        "/collections/docs", headers=auth, json={"vectors": {"size": 2, "distance": "Dot"}}
    )
    started = env.client.post("/auth/step-up", headers=auth, json={"acr_values": "aal3"})
    tx = started.json()["transaction_id"]
    stepped = verify_key(env, tx, passkey.get(key_challenge(env, tx), origin=ORIGIN))
    assert stepped.status_code == 200, stepped.text
    assert stepped.json()["acr"] == "aal2"  # what it proved; never aal3
    export = env.client.post("/collections/docs/export", headers=bearer(stepped.json()))
    assert export.status_code == 401
    assert 'acr_values="aal3"' in export.headers["www-authenticate"]


def test_a_key_added_in_a_session_never_satisfies_that_sessions_step_up(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    auth = bearer(tokens)
    key = SoftAuthenticator()
    assert register_key(env, auth, key).status_code == 201
    started = env.client.post("/auth/step-up", headers=auth, json={"acr_values": "aal3"})
    assert started.status_code == 403, started.text  # the only aal3 factor is its own
    started = env.client.post("/auth/step-up", headers=auth, json={"acr_values": "aal2"})
    assert "webauthn" not in started.json()["methods"]
    tx = started.json()["transaction_id"]
    answer = env.client.post(f"/auth/login/{tx}/challenge", json={"method": "webauthn"})
    assert answer.status_code == 422
    assert answer.json()["code"] == "method_not_available"


def test_passwordless_passkey_sign_in(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    key = SoftAuthenticator()  # resident key with user verification, device-bound
    assert register_key(env, bearer(tokens), key).status_code == 201
    options = env.client.post("/auth/passkey/options").json()
    assert options["transaction_id"].startswith("ptx_")
    assert (
        "allowCredentials" not in options["options"] or not options["options"]["allowCredentials"]
    )
    signed_in = passkey_sign_in(env, key)
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert body["acr"] == "aal3"  # device-bound and user-verified: aal3 alone
    assert sorted(body["amr"]) == ["hwk", "mfa", "pin", "user"]
    me = env.client.get("/me", headers=bearer(body)).json()
    assert me["username"] == "admin"
    assert actions(env, "login.success")[-1].reason == "passkey"


def test_synced_passkey_sign_in_is_aal2(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    passkey = SoftAuthenticator(backup_eligible=True, backup_state=True, counter_step=0)
    assert register_key(env, bearer(tokens), passkey).status_code == 201
    signed_in = passkey_sign_in(env, passkey)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["acr"] == "aal2"


def test_rename_is_audited_and_needs_no_fresh_proof(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    factor = register_key(env, bearer(tokens), SoftAuthenticator()).json()["factor"]
    env.clock.advance(600)  # past the recent-proof window (300 s), token still live
    renamed = env.client.patch(
        f"/me/factors/{factor['id']}", headers=bearer(tokens), json={"name": "Desk key"}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Desk key"
    [event] = actions(env, "factor.renamed")
    assert event.details["before"] == "YubiKey"
    assert event.details["after"] == "Desk key"
    bad = env.client.patch(
        f"/me/factors/{factor['id']}", headers=bearer(tokens), json={"name": "a\u202eb"}
    )
    assert bad.status_code == 422
    missing = env.client.patch("/me/factors/fac_nope", headers=bearer(tokens), json={"name": "x"})
    assert missing.status_code == 404


def test_remove_a_key_needs_a_fresh_proof(env: Env) -> None:
    _, tokens = signed_in_admin(env)
    factor = register_key(env, bearer(tokens), SoftAuthenticator()).json()["factor"]
    env.clock.advance(301)
    stale = env.client.delete(f"/me/factors/{factor['id']}", headers=bearer(tokens))
    assert stale.status_code == 401
    assert "insufficient_user_authentication" in stale.headers["www-authenticate"]


def test_aal3_admin_actions_are_reachable_with_a_device_bound_key(env: Env) -> None:
    # Export, factor resets and audit export: reachable by a real sign-in (issue 13).
    _, tokens = signed_in_admin(env)
    key = SoftAuthenticator()
    assert register_key(env, bearer(tokens), key).status_code == 201
    env.next_step()
    signed_in = sign_in_with_key(env, key)
    assert signed_in.json()["acr"] == "aal3"
    auth = bearer(signed_in.json())
    assert env.client.get("/admin/audit/export", headers=auth).status_code == 200
    made = env.client.post("/admin/users", headers=auth, json={"username": "kim", "roles": []})
    assert made.status_code == 201, made.text
    reset = env.client.post(f"/admin/users/{made.json()['id']}/reset-factors", headers=auth)
    assert reset.status_code == 200, reset.text
