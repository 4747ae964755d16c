"""WebAuthn ceremonies (§7.1, §7.2) against a software authenticator: one change per refusal."""

from __future__ import annotations

import base64
import contextlib
import json
import random
from dataclasses import replace
from typing import Any

import cbor2
import pytest
from tests.support.authenticator import KeyPair, SoftAuthenticator
from tests.support.webauthn import (
    HANDLE,
    NO_ATTESTATION,
    NOW,
    ORIGIN,
    PROXY_ORIGIN,
    RP,
    creation_options,
    register,
    request_options,
    sign_in,
    verify_assertion,
)

from bastion.errors import (
    AssertionRefused,
    AttestationRefused,
    AuthenticationError,
    WebAuthnRefused,
)
from bastion.factors.webauthn import (
    Algorithm,
    CredentialDescriptor,
    Refusal,
    StoredCredential,
    assertion_ids,
    authentication_options,
    b64url,
    new_challenge,
    verify_registration,
)
from bastion.factors.webauthn.ceremony import check_client_data

EVIL = "https://login.evil.example"


def refused(excinfo: pytest.ExceptionInfo[WebAuthnRefused], reason: Refusal) -> None:
    assert excinfo.value.code == reason.value
    assert excinfo.value.fields == {"reason": reason.value}
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


# --- options ----------------------------------------------------------------------------------


def test_challenges_are_32_fresh_random_bytes() -> None:
    challenges = {new_challenge() for _ in range(100)}
    assert len(challenges) == 100
    assert {len(c) for c in challenges} == {32}


def test_registration_options_are_the_json_a_browser_takes() -> None:
    existing = CredentialDescriptor(id=b"\x01" * 16, transports=("usb", "nfc"))
    options, challenge = creation_options(exclude=[existing], resident_key="required")
    assert json.loads(json.dumps(options)) == options  # plain JSON
    assert options["challenge"] == b64url(challenge)
    assert options["rp"] == {"id": "localhost", "name": "Bastion"}
    assert options["user"] == {"id": b64url(HANDLE), "name": "alice", "displayName": "alice"}
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-8, -7, -257]
    assert options["excludeCredentials"] == [
        {"id": b64url(b"\x01" * 16), "type": "public-key", "transports": ["usb", "nfc"]}
    ]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["attestation"] == "none"
    assert options["extensions"] == {"credProps": True}
    assert options["timeout"] == 300_000


def test_authentication_options_for_a_second_factor_and_for_a_passkey() -> None:
    stored = StoredCredential(
        credential_id=b"\x02" * 20, public_key=b"", sign_count=0, backup_eligible=False
    )
    second, challenge, _ = request_options(stored, user_verification="discouraged")
    assert second["challenge"] == b64url(challenge)
    assert second["rpId"] == "localhost"
    assert second["allowCredentials"] == [{"id": b64url(b"\x02" * 20), "type": "public-key"}]
    assert second["userVerification"] == "discouraged"
    passkey, _, _ = request_options(None, user_verification="required")
    assert passkey["allowCredentials"] == []  # the browser offers its discoverable credentials
    assert passkey["userVerification"] == "required"


@pytest.mark.parametrize("size", [0, 8, 15])
def test_options_refuse_a_short_challenge(size: int) -> None:
    with pytest.raises(ValueError, match="at least 16"):
        authentication_options(rp=RP, challenge=b"\x00" * size)


# --- registration: what it returns ---------------------------------------------------------------


@pytest.mark.parametrize(("alg", "cose"), [("ES256", Algorithm.ES256), ("EdDSA", Algorithm.EDDSA)])
def test_registration_of_a_security_key(alg: Any, cose: Algorithm) -> None:
    authenticator = SoftAuthenticator(alg=alg)
    result = register(authenticator)
    assert result.algorithm is cose
    assert result.credential_id in authenticator.credentials
    assert result.public_key == authenticator.credentials[result.credential_id].key.cose()
    assert (result.backup_eligible, result.backup_state, result.user_verified) == (
        False,
        False,
        True,
    )
    assert result.sign_count == 0
    assert result.transports == ("usb",)
    assert result.attestation_format == "none"
    assert result.attestation_trusted is False
    assert result.discoverable is True
    assert str(result.aaguid) == "00000000-0000-0000-0000-000000000000"


def test_registration_of_a_synced_passkey_reports_backup_flags() -> None:
    passkey = SoftAuthenticator(backup_eligible=True, backup_state=True, attachment="platform")
    result = register(passkey, origin=PROXY_ORIGIN)  # a second configured origin
    assert (result.backup_eligible, result.backup_state) == (True, True)


def test_packed_self_attestation_verifies_under_the_none_policy() -> None:
    # A browser that does not strip attestation: the statement is still checked (step 22).
    key = SoftAuthenticator(attestation="packed-self", strip_attestation=False, alg="EdDSA")
    result = register(key)
    assert (result.attestation_format, result.attestation_trusted) == ("packed", False)


def test_stored_row_round_trip() -> None:
    result = register(SoftAuthenticator())
    row = json.loads(json.dumps(result.factor_columns()))  # through a JSON column and back
    assert row["credential_id"] == b64url(result.credential_id)
    assert (row["replay_counter"], row["backup_eligible"], row["aaguid"]) == (
        0,
        False,
        str(result.aaguid),
    )
    assert StoredCredential.from_row(row) == result.stored()
    assert result.stored().public_key == result.public_key


@pytest.mark.parametrize(
    ("credential_id", "public_data", "backup_eligible"),
    [
        (None, None, None),  # a TOTP row
        ("AAAA", {}, False),  # no public key
        ("AAAA", {"public_key": 5}, False),
        ("AAAA", ["public_key"], False),
    ],
)
def test_a_row_that_is_not_a_credential(
    credential_id: Any, public_data: Any, backup_eligible: Any
) -> None:
    row = {
        "credential_id": credential_id,
        "public_data": public_data,
        "replay_counter": 3,
        "backup_eligible": backup_eligible,
    }
    with pytest.raises(ValueError, match="not a WebAuthn"):
        StoredCredential.from_row(row)


# --- registration refusals (§7.1), one change each ---------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"origin": EVIL}, Refusal.WRONG_ORIGIN),
        ({"origin": "http://localhost:6334"}, Refusal.WRONG_ORIGIN),
        ({"rp_id": "evil.example"}, Refusal.WRONG_RP_ID),
        ({"ceremony": "webauthn.get"}, Refusal.WRONG_CEREMONY),
        ({"challenge": b64url(b"\x00" * 32)}, Refusal.CHALLENGE_MISMATCH),
        ({"cross_origin": True}, Refusal.CROSS_ORIGIN),
        ({"up": False}, Refusal.USER_NOT_PRESENT),
        ({"bs": True}, Refusal.MALFORMED_CREDENTIAL),  # backed up but not backup-eligible
        ({"credential_id": b"\x07" * 1024}, Refusal.MALFORMED_CREDENTIAL),  # > 1023 bytes
    ],
)
def test_registration_refused(overrides: dict[str, Any], reason: Refusal) -> None:
    with pytest.raises(AttestationRefused) as excinfo:
        register(SoftAuthenticator(), **overrides)
    refused(excinfo, reason)
    assert excinfo.value.status == 400


def test_registration_replayed_for_another_challenge_is_refused() -> None:
    # The response answers one ceremony's challenge; verifying it against the next
    # ceremony's (what a replay looks like to the server) fails. Single use itself is the
    # caller's storage: it deletes the challenge in the transaction that verifies it.
    with pytest.raises(AttestationRefused) as excinfo:
        register(SoftAuthenticator(), expected_challenge=new_challenge())
    refused(excinfo, Refusal.CHALLENGE_MISMATCH)


def test_registration_without_user_verification_where_required() -> None:
    with pytest.raises(AttestationRefused) as excinfo:
        register(SoftAuthenticator(), require_user_verification=True, uv=False)
    refused(excinfo, Refusal.USER_NOT_VERIFIED)
    assert register(SoftAuthenticator(), require_user_verification=True).user_verified


def test_registration_of_an_algorithm_not_offered() -> None:
    with pytest.raises(AttestationRefused) as excinfo:
        register(SoftAuthenticator(alg="EdDSA"), algorithms=(Algorithm.ES256,))
    refused(excinfo, Refusal.ALGORITHM_NOT_ALLOWED)


def _registration_response(**overrides: Any) -> tuple[dict[str, Any], bytes]:
    options, challenge = creation_options()
    return SoftAuthenticator().create(options, origin=ORIGIN, **overrides), challenge


def _verify_registration(response: Any, challenge: bytes) -> None:
    verify_registration(
        credential=response,
        rp=RP,
        expected_challenge=challenge,
        attestation=NO_ATTESTATION,
        now=NOW,
    )


def _b64url_text(text: str) -> str:
    return b64url(text.encode())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("response", "attestationObject"), b64url(b"\xff\x00 not CBOR")),
        (("response", "attestationObject"), b64url(cbor2.dumps([1, 2, 3]))),
        (("response", "attestationObject"), b64url(cbor2.dumps({"fmt": "none"}))),
        (("response", "attestationObject"), ""),
        (("response", "clientDataJSON"), _b64url_text("{not json")),
        (("response", "clientDataJSON"), _b64url_text("[1, 2]")),
        (("response", "clientDataJSON"), _b64url_text('{"type": "webauthn.create"}')),
        (("response", "clientDataJSON"), "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0!"),  # not base64url
        (("response", "clientDataJSON"), "eyJ0eXBl+Ijoid2ViYXV0aG4uY3JlYXRlIn0"),  # base64, not url
        (("response", "clientDataJSON"), 42),
        (("response", "clientDataJSON"), "A" * 70_000),
        (("rawId",), "AAAA"),  # not the id
        (("id",), "AAAA"),
        (("type",), "password"),
        (("response",), "nothing"),
    ],
)
def test_malformed_registration_is_refused(path: tuple[str, ...], value: Any) -> None:
    response, challenge = _registration_response()
    target = response
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(AttestationRefused) as excinfo:
        _verify_registration(response, challenge)
    refused(excinfo, Refusal.MALFORMED_CREDENTIAL)


@pytest.mark.parametrize("credential", [None, [], "{}", 7, {}])
def test_registration_that_is_not_a_credential_object(credential: Any) -> None:
    with pytest.raises(AttestationRefused) as excinfo:
        _verify_registration(credential, new_challenge())
    refused(excinfo, Refusal.MALFORMED_CREDENTIAL)


def test_client_data_with_a_top_origin_is_refused() -> None:
    response, challenge = _registration_response()
    data = json.loads(base64.urlsafe_b64decode(response["response"]["clientDataJSON"] + "=="))
    data["topOrigin"] = EVIL
    response["response"]["clientDataJSON"] = _b64url_text(json.dumps(data))
    with pytest.raises(AttestationRefused) as excinfo:
        _verify_registration(response, challenge)
    refused(excinfo, Refusal.CROSS_ORIGIN)


def test_client_data_with_a_byte_order_mark_is_read() -> None:
    # §7.1 step 5: UTF-8 decode, which strips a leading byte order mark.
    response, challenge = _registration_response()
    raw = base64.urlsafe_b64decode(response["response"]["clientDataJSON"] + "==")
    client_data = check_client_data(
        AttestationRefused,
        b"\xef\xbb\xbf" + raw,
        ceremony="webauthn.create",
        rp=RP,
        expected_challenge=challenge,
    )
    assert (client_data.origin, client_data.challenge) == (ORIGIN, challenge)


def test_tampered_packed_signature_is_an_invalid_attestation() -> None:
    options, challenge = creation_options()
    key = SoftAuthenticator(attestation="packed-self", strip_attestation=False)
    response = key.create(options, origin=ORIGIN)
    attestation = cbor2.loads(
        base64.urlsafe_b64decode(response["response"]["attestationObject"] + "==")
    )
    signature = bytearray(attestation["attStmt"]["sig"])
    signature[-1] ^= 0x01
    attestation["attStmt"]["sig"] = bytes(signature)
    response["response"]["attestationObject"] = b64url(cbor2.dumps(attestation))
    with pytest.raises(AttestationRefused) as excinfo:
        _verify_registration(response, challenge)
    refused(excinfo, Refusal.ATTESTATION_INVALID)


def test_none_format_with_a_statement_is_an_invalid_attestation() -> None:
    response, challenge = _registration_response()
    attestation = cbor2.loads(
        base64.urlsafe_b64decode(response["response"]["attestationObject"] + "==")
    )
    attestation["attStmt"] = {"sig": b"\x00" * 8}
    response["response"]["attestationObject"] = b64url(cbor2.dumps(attestation))
    with pytest.raises(AttestationRefused) as excinfo:
        _verify_registration(response, challenge)
    refused(excinfo, Refusal.ATTESTATION_INVALID)


def test_registration_error_carries_no_library_text() -> None:
    response, challenge = _registration_response()
    response["response"]["attestationObject"] = b64url(b"\xff")
    with pytest.raises(AttestationRefused) as excinfo:
        _verify_registration(response, challenge)
    assert excinfo.value.detail == "The attestation object could not be read."
    assert excinfo.value.__context__ is not None  # handled, and not chained for display
    assert excinfo.value.__suppress_context__


# --- authentication: what it returns -------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_second_factor_sign_in(alg: Any) -> None:
    key = SoftAuthenticator(alg=alg)
    stored = register(key).stored()
    first = sign_in(key, stored)
    assert (first.sign_count, first.user_verified, first.backup_eligible) == (1, True, False)
    assert first.credential_id == stored.credential_id
    second = sign_in(key, replace(stored, sign_count=first.sign_count), uv=False)
    assert (second.sign_count, second.user_verified) == (2, False)


def test_passkey_sign_in_without_a_username_returns_the_user_handle() -> None:
    passkey = SoftAuthenticator(backup_eligible=True, backup_state=True, counter_step=0)
    stored = register(passkey).stored()
    result = sign_in(passkey, stored, passkey=True, require_user_verification=True)
    assert result.user_handle == HANDLE
    assert (result.backup_eligible, result.backup_state, result.sign_count) == (True, True, 0)
    # A synced passkey that always reports 0 is not a counter regression.
    assert sign_in(passkey, stored, passkey=True).sign_count == 0


def test_assertion_ids_tell_the_caller_which_record_to_load() -> None:
    key = SoftAuthenticator()
    stored = register(key).stored()
    options, _, _ = request_options(None)
    ids = assertion_ids(key.get(options, origin=ORIGIN))
    assert (ids.credential_id, ids.user_handle) == (stored.credential_id, HANDLE)


@pytest.mark.parametrize(
    "credential",
    [
        None,
        {},
        {"response": {}},
        {"rawId": "!!", "response": {}},
        {"rawId": "AA", "response": {"userHandle": 5}},
    ],
)
def test_assertion_ids_of_garbage_are_malformed(credential: Any) -> None:
    with pytest.raises(AssertionRefused) as excinfo:
        assertion_ids(credential)
    refused(excinfo, Refusal.MALFORMED_CREDENTIAL)


# --- authentication refusals (§7.2), one change each -------------------------------------


@pytest.fixture
def key_and_record() -> tuple[SoftAuthenticator, StoredCredential]:
    key = SoftAuthenticator()
    stored = register(key).stored()
    sign_in(key, stored)  # the key's counter is now 1
    return key, replace(stored, sign_count=1)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"origin": EVIL}, Refusal.WRONG_ORIGIN),
        ({"rp_id": "evil.example"}, Refusal.WRONG_RP_ID),
        ({"ceremony": "webauthn.create"}, Refusal.WRONG_CEREMONY),
        ({"challenge": b64url(b"\x00" * 32)}, Refusal.CHALLENGE_MISMATCH),
        ({"cross_origin": True}, Refusal.CROSS_ORIGIN),
        ({"up": False}, Refusal.USER_NOT_PRESENT),
        ({"bs": True}, Refusal.MALFORMED_CREDENTIAL),  # BS without BE
        ({"be": True, "bs": True}, Refusal.BACKUP_ELIGIBILITY_CHANGED),
        ({"sign_count": 1}, Refusal.COUNTER_REGRESSION),  # equal to the stored count
        ({"sign_count": 0}, Refusal.COUNTER_REGRESSION),  # back to zero
        ({"user_handle": b"usr_someone_else"}, Refusal.USER_HANDLE_MISMATCH),
    ],
)
def test_sign_in_refused(
    key_and_record: tuple[SoftAuthenticator, StoredCredential],
    overrides: dict[str, Any],
    reason: Refusal,
) -> None:
    key, stored = key_and_record
    with pytest.raises(AssertionRefused) as excinfo:
        sign_in(key, stored, **overrides)
    refused(excinfo, reason)
    assert excinfo.value.status == 401
    assert isinstance(excinfo.value, AuthenticationError)


def test_sign_in_replayed_for_another_challenge_is_refused(
    key_and_record: tuple[SoftAuthenticator, StoredCredential],
) -> None:
    key, stored = key_and_record
    with pytest.raises(AssertionRefused) as excinfo:
        sign_in(key, stored, expected_challenge=new_challenge())
    refused(excinfo, Refusal.CHALLENGE_MISMATCH)


def test_sign_in_without_user_verification_where_required(
    key_and_record: tuple[SoftAuthenticator, StoredCredential],
) -> None:
    key, stored = key_and_record
    with pytest.raises(AssertionRefused) as excinfo:
        sign_in(key, stored, require_user_verification=True, uv=False)
    refused(excinfo, Refusal.USER_NOT_VERIFIED)


def test_a_counter_lower_than_stored_is_a_possible_clone(
    key_and_record: tuple[SoftAuthenticator, StoredCredential],
) -> None:
    key, stored = key_and_record
    with pytest.raises(AssertionRefused) as excinfo:
        sign_in(key, replace(stored, sign_count=100))
    refused(excinfo, Refusal.COUNTER_REGRESSION)
    assert "cloned" in excinfo.value.detail


def test_synced_passkey_reporting_device_bound_is_refused() -> None:
    passkey = SoftAuthenticator(backup_eligible=True)
    stored = register(passkey).stored()
    with pytest.raises(AssertionRefused) as excinfo:
        sign_in(passkey, stored, be=False)
    refused(excinfo, Refusal.BACKUP_ELIGIBILITY_CHANGED)


def test_passkey_sign_in_must_name_its_account() -> None:
    key = SoftAuthenticator()
    options, _ = creation_options(resident_key="discouraged")
    response = key.create(options, origin=ORIGIN)  # a non-resident credential: no handle
    credential_id = assertion_ids({"rawId": response["rawId"], "response": {}}).credential_id
    stored = StoredCredential(
        credential_id=credential_id,
        public_key=key.credentials[credential_id].key.cose(),
        sign_count=0,
        backup_eligible=False,
    )
    with pytest.raises(AssertionRefused) as excinfo:
        sign_in(key, stored, passkey=True, credential_id=credential_id)
    refused(excinfo, Refusal.USER_HANDLE_MISMATCH)
    assert sign_in(key, stored, credential_id=credential_id).user_handle is None  # 2nd factor


def test_credential_outside_the_allow_list_is_refused() -> None:
    key = SoftAuthenticator()
    mine, other = register(key).stored(), register(key).stored()
    options, challenge, _ = request_options(mine)
    response = key.get(options, origin=ORIGIN, credential_id=other.credential_id)
    with pytest.raises(AssertionRefused) as excinfo:
        verify_assertion(response, other, challenge, allow=[mine.credential_id])
    refused(excinfo, Refusal.UNKNOWN_CREDENTIAL)


def test_response_for_another_record_is_refused() -> None:
    key = SoftAuthenticator()
    mine, other = register(key).stored(), register(key).stored()
    options, challenge, _ = request_options(None)
    response = key.get(options, origin=ORIGIN, credential_id=other.credential_id)
    with pytest.raises(AssertionRefused) as excinfo:
        verify_assertion(response, mine, challenge, allow=())
    refused(excinfo, Refusal.UNKNOWN_CREDENTIAL)


def test_signature_by_another_key_is_refused(
    key_and_record: tuple[SoftAuthenticator, StoredCredential],
) -> None:
    key, stored = key_and_record
    impostor = replace(stored, public_key=KeyPair.generate("ES256").cose())
    with pytest.raises(AssertionRefused) as excinfo:
        sign_in(key, impostor)
    refused(excinfo, Refusal.INVALID_SIGNATURE)


def _assertion(key: SoftAuthenticator, stored: StoredCredential) -> tuple[dict[str, Any], bytes]:
    options, challenge, _ = request_options(stored)
    return key.get(options, origin=ORIGIN), challenge


def test_authenticator_data_changed_after_signing_is_refused(
    key_and_record: tuple[SoftAuthenticator, StoredCredential],
) -> None:
    key, stored = key_and_record
    response, challenge = _assertion(key, stored)
    data = bytearray(base64.urlsafe_b64decode(response["response"]["authenticatorData"] + "=="))
    data[32] ^= 0x04  # flip UV after the fact
    response["response"]["authenticatorData"] = b64url(bytes(data))
    with pytest.raises(AssertionRefused) as excinfo:
        verify_assertion(response, stored, challenge)
    refused(excinfo, Refusal.INVALID_SIGNATURE)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("authenticatorData", b64url(b"\x00" * 36)),  # shorter than 37 bytes
        ("authenticatorData", b64url(b"\x00" * 37 + b"trailing")),
        ("authenticatorData", "@@@@"),
        ("signature", "not base64url!"),
        ("clientDataJSON", _b64url_text('{"type": "webauthn.get", "challenge": 5, "origin": ""}')),
        (
            "clientDataJSON",
            _b64url_text('{"type": "webauthn.get", "challenge": "!", "origin": ""}'),
        ),
        ("clientDataJSON", b64url(b"\xff\xfe not utf-8")),
        ("userHandle", "%%"),
    ],
)
def test_malformed_assertion_is_refused(
    key_and_record: tuple[SoftAuthenticator, StoredCredential], member: str, value: str
) -> None:
    key, stored = key_and_record
    response, challenge = _assertion(key, stored)
    response["response"][member] = value
    with pytest.raises(AssertionRefused) as excinfo:
        verify_assertion(response, stored, challenge)
    refused(excinfo, Refusal.MALFORMED_CREDENTIAL)


def test_every_refusal_code_is_stable_snake_case() -> None:
    assert all(r.value == r.name.lower() for r in Refusal)
    assert {r.value for r in Refusal} >= {
        "wrong_origin",
        "wrong_rp_id",
        "challenge_mismatch",
        "user_not_present",
        "user_not_verified",
        "algorithm_not_allowed",
        "counter_regression",
        "backup_eligibility_changed",
        "malformed_credential",
        "attestation_not_trusted",
    }


def test_garbage_certificate_in_a_statement_is_an_invalid_attestation() -> None:
    options, challenge = creation_options()
    key = SoftAuthenticator(attestation="packed-self", strip_attestation=False)
    response = key.create(options, origin=ORIGIN)
    attestation = cbor2.loads(
        base64.urlsafe_b64decode(response["response"]["attestationObject"] + "==")
    )
    attestation["attStmt"]["x5c"] = [b"not a certificate"]
    response["response"]["attestationObject"] = b64url(cbor2.dumps(attestation))
    with pytest.raises(AttestationRefused) as excinfo:
        _verify_registration(response, challenge)
    refused(excinfo, Refusal.ATTESTATION_INVALID)


def _mutations(data: bytes, seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out: list[bytes] = []
    while len(out) < count:
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            kind = rng.random() if mutated else 1.0  # an empty value can only grow
            at = rng.randrange(len(mutated)) if mutated else 0
            if kind < 0.6:
                mutated[at] = rng.randrange(256)
            elif kind < 0.8:
                del mutated[at:]
            else:
                mutated[at:at] = rng.randbytes(rng.randint(1, 8))
        if mutated != data:
            out.append(bytes(mutated))
    return out


@pytest.mark.parametrize("member", ["attestationObject", "clientDataJSON"])
def test_mutated_registration_never_escapes_as_another_error(member: str) -> None:
    # Bad input is a clear 4xx, never a 500: whatever the bytes, a refusal or a result.
    options, challenge = creation_options()
    key = SoftAuthenticator(attestation="packed-self", strip_attestation=False)
    response = key.create(options, origin=ORIGIN)
    original = base64.urlsafe_b64decode(response["response"][member] + "==")
    for mutated in _mutations(original, seed=13, count=300):
        response["response"][member] = b64url(mutated)
        with contextlib.suppress(AttestationRefused):
            _verify_registration(response, challenge)


@pytest.mark.parametrize("member", ["authenticatorData", "clientDataJSON", "signature"])
def test_mutated_assertion_never_escapes_as_another_error(
    key_and_record: tuple[SoftAuthenticator, StoredCredential], member: str
) -> None:
    key, stored = key_and_record
    response, challenge = _assertion(key, stored)
    original = base64.urlsafe_b64decode(response["response"][member] + "==")
    for mutated in _mutations(original, seed=13, count=300):
        response["response"][member] = b64url(mutated)
        with pytest.raises(AssertionRefused):  # a changed signed byte never verifies
            verify_assertion(response, stored, challenge)


@pytest.mark.parametrize("fmt", ["android-safetynet", "not_real_fmt", "Packed"])
def test_unsupported_attestation_format_is_refused(fmt: str) -> None:
    response, challenge = _registration_response()
    attestation = cbor2.loads(
        base64.urlsafe_b64decode(response["response"]["attestationObject"] + "==")
    )
    attestation["fmt"] = fmt
    response["response"]["attestationObject"] = b64url(cbor2.dumps(attestation))
    with pytest.raises(AttestationRefused) as excinfo:
        _verify_registration(response, challenge)
    refused(excinfo, Refusal.ATTESTATION_INVALID)
    assert excinfo.value.detail == "The attestation format is not supported."
