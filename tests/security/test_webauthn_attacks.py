"""Attacks on the WebAuthn verifiers (the HTTP flows are tested where the routes live)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from tests.support.authenticator import SoftAuthenticator
from tests.support.webauthn import (
    ORIGIN,
    RP,
    register,
    request_options,
    sign_in,
    verify_assertion,
)

from bastion.errors import AssertionRefused
from bastion.factors.webauthn import Refusal, StoredCredential, b64url


def _forged(
    key: SoftAuthenticator, stored: StoredCredential, **flags: Any
) -> tuple[dict[str, Any], bytes]:
    """An assertion whose authenticator data was rewritten by someone without the key."""
    options, challenge, _ = request_options(stored)
    response = key.get(options, origin=ORIGIN)
    forged = key.authenticator_data(rp_id=RP.id, up=True, uv=True, **flags)
    response["response"]["authenticatorData"] = b64url(forged)
    return response, challenge


def test_forged_low_counter_is_not_reported_as_a_cloned_key() -> None:
    # Only the key's holder can trigger "possible clone" (which the caller audits and may
    # act on): an unsigned low counter is just an invalid signature.
    key = SoftAuthenticator()
    stored = replace(register(key).stored(), sign_count=50)
    forged, challenge = _forged(key, stored, be=False, bs=False, sign_count=3)
    with pytest.raises(AssertionRefused) as excinfo:
        verify_assertion(forged, stored, challenge)
    assert excinfo.value.code == Refusal.INVALID_SIGNATURE.value


def test_forged_backup_flag_is_not_reported_as_a_changed_key() -> None:
    key = SoftAuthenticator()
    stored = register(key).stored()
    forged, challenge = _forged(key, stored, be=True, bs=True, sign_count=9)
    with pytest.raises(AssertionRefused) as excinfo:
        verify_assertion(forged, stored, challenge)
    assert excinfo.value.code == Refusal.INVALID_SIGNATURE.value


def test_cloned_authenticator_counter_regression_refused() -> None:
    # The original key has signed 5 times (stored count 5); a copy of its private key made
    # earlier signs correctly but with its own, lower counter.
    key = SoftAuthenticator()
    stored = replace(register(key).stored(), sign_count=5)
    with pytest.raises(AssertionRefused) as excinfo:
        sign_in(key, stored, sign_count=3)
    assert excinfo.value.code == Refusal.COUNTER_REGRESSION.value
    assert "cloned" in excinfo.value.detail


def test_synced_passkey_cannot_pass_for_a_device_bound_key() -> None:
    # A passkey registered as backup-eligible (aal2 at most) that later signs BE=0 to
    # reach aal3 is refused: BE is a property of the credential, fixed at registration.
    passkey = SoftAuthenticator(backup_eligible=True, backup_state=True)
    stored = register(passkey).stored()
    with pytest.raises(AssertionRefused) as excinfo:
        sign_in(passkey, stored, be=False, bs=False)
    assert excinfo.value.code == Refusal.BACKUP_ELIGIBILITY_CHANGED.value


def test_stolen_credential_id_and_public_key_do_not_sign_in() -> None:
    # Both are public (sent to browsers, stored unencrypted); the private key never is.
    victim = SoftAuthenticator()
    stored = register(victim).stored()
    attacker = SoftAuthenticator()
    options, challenge, _ = request_options(stored)
    attacker_credential = register(attacker, credential_id=stored.credential_id)
    response = attacker.get(options, origin=ORIGIN, credential_id=attacker_credential.credential_id)
    with pytest.raises(AssertionRefused) as excinfo:
        verify_assertion(response, stored, challenge)
    assert excinfo.value.code == Refusal.INVALID_SIGNATURE.value


def test_passkey_answering_for_another_account_is_refused() -> None:
    # A discoverable sign-in names its account by user handle; the record the caller found
    # by credential id must belong to that account (§7.2 step 6).
    passkey = SoftAuthenticator(backup_eligible=True)
    stored = register(passkey).stored()
    with pytest.raises(AssertionRefused) as excinfo:
        sign_in(passkey, stored, passkey=True, user_handle=b"usr_ffffffffffffffffffffffffffffffff")
    assert excinfo.value.code == Refusal.USER_HANDLE_MISMATCH.value


def test_relayed_assertion_from_a_phishing_page_is_refused() -> None:
    # A proxy page that relays our challenge gets a response whose signed client data
    # names the proxy's origin.
    key = SoftAuthenticator()
    stored = register(key).stored()
    with pytest.raises(AssertionRefused) as excinfo:
        sign_in(key, stored, origin="https://bastion.login-check.example")
    assert excinfo.value.code == Refusal.WRONG_ORIGIN.value
