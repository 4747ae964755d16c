"""Real recorded payloads (py_webauthn's test data, tests/fixtures/webauthn) through Bastion."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography import x509
from tests.support.webauthn import NOW

from bastion.errors import AssertionRefused, AttestationRefused
from bastion.factors.webauthn import (
    Algorithm,
    AttestationPolicy,
    Refusal,
    RelyingParty,
    StoredCredential,
    assertion_ids,
    b64url_decode,
    verify_authentication,
    verify_registration,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webauthn"
REGISTRATIONS = sorted(FIXTURES.glob("registration_*.json"))
AUTHENTICATIONS = sorted(FIXTURES.glob("authentication_*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    assert data["source"].startswith("duo-labs/py_webauthn @ ")
    return data


def relying_party(data: dict[str, Any], origins: list[str] | None = None) -> RelyingParty:
    return RelyingParty(id=data["rp_id"], name="Bastion", origins=tuple(origins or data["origins"]))


def roots(name: str) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates((FIXTURES / name).read_bytes()))


def register(data: dict[str, Any], policy: AttestationPolicy, **kwargs: Any) -> Any:
    return verify_registration(
        credential=data["credential"],
        rp=kwargs.pop("rp", relying_party(data)),
        expected_challenge=b64url_decode(data["challenge"]),
        attestation=policy,
        now=kwargs.pop("now", NOW),
        **kwargs,
    )


def test_the_fixtures_cover_the_formats_and_algorithms() -> None:
    expected = [load(p)["expect"] for p in REGISTRATIONS]
    assert {e["fmt"] for e in expected} == {"none", "packed", "fido-u2f", "tpm"}
    assert {e["algorithm"] for e in expected} == {-7, -8, -257}
    assert len(AUTHENTICATIONS) >= 3


@pytest.mark.parametrize("path", REGISTRATIONS, ids=lambda p: p.stem)
def test_recorded_registration_verifies(path: Path) -> None:
    data = load(path)
    expect = data["expect"]
    result = register(data, AttestationPolicy())
    assert result.attestation_format == expect["fmt"]
    assert result.algorithm is Algorithm(expect["algorithm"])
    assert result.backup_eligible is expect["backup_eligible"]
    assert result.attestation_trusted is False
    assert result.credential_id == b64url_decode(data["credential"]["rawId"])
    if "aaguid" in expect:
        assert result.aaguid == UUID(expect["aaguid"])
    if "sign_count" in expect:
        assert result.sign_count == expect["sign_count"]


@pytest.mark.parametrize(
    "path", [p for p in REGISTRATIONS if "trusted_by" in load(p)["expect"]], ids=lambda p: p.stem
)
def test_recorded_attestation_chains_to_the_vendor_root(path: Path) -> None:
    data = load(path)
    expect = data["expect"]
    policy = AttestationPolicy(conveyance="direct", roots=roots(expect["trusted_by"]))
    when = datetime.fromisoformat(expect.get("trusted_at", NOW.isoformat()))
    assert register(data, policy, now=when).attestation_trusted
    other = "microsoft_tpm_root_2014.pem" if expect["fmt"] != "tpm" else "yubico_u2f_root.pem"
    with pytest.raises(AttestationRefused) as excinfo:
        register(data, AttestationPolicy(conveyance="direct", roots=roots(other)), now=when)
    assert excinfo.value.code == Refusal.ATTESTATION_NOT_TRUSTED.value


def test_recorded_tpm_attestation_expired_with_its_certificates() -> None:
    data = load(FIXTURES / "registration_tpm_surface_pro_4.json")
    policy = AttestationPolicy(conveyance="direct", roots=roots("microsoft_tpm_root_2014.pem"))
    with pytest.raises(AttestationRefused) as excinfo:
        register(data, policy, now=datetime.fromisoformat(data["expect"]["expired_at"]))
    assert excinfo.value.code == Refusal.ATTESTATION_NOT_TRUSTED.value


def test_recorded_yubikey_is_refused_when_its_model_is_not_allowed() -> None:
    data = load(FIXTURES / "registration_packed_yubikey_firefox.json")
    policy = AttestationPolicy(
        conveyance="direct",
        roots=roots("yubico_u2f_root.pem"),
        allowed_aaguids=frozenset({UUID(int=1)}),
    )
    with pytest.raises(AttestationRefused) as excinfo:
        register(data, policy)
    assert excinfo.value.code == Refusal.AAGUID_NOT_ALLOWED.value
    allowed = AttestationPolicy(
        conveyance="direct",
        roots=roots("yubico_u2f_root.pem"),
        allowed_aaguids=frozenset({UUID(data["expect"]["aaguid"])}),
    )
    assert register(data, allowed).attestation_trusted


@pytest.mark.parametrize("path", REGISTRATIONS, ids=lambda p: p.stem)
def test_recorded_registration_is_bound_to_its_origin_and_rp_id(path: Path) -> None:
    data = load(path)
    with pytest.raises(AttestationRefused) as excinfo:
        register(data, AttestationPolicy(), rp=relying_party(data, ["https://bastion.example"]))
    assert excinfo.value.code == Refusal.WRONG_ORIGIN.value
    other_rp = RelyingParty(id="bastion.example", name="Bastion", origins=tuple(data["origins"]))
    with pytest.raises(AttestationRefused) as excinfo:
        register(data, AttestationPolicy(), rp=other_rp)
    assert excinfo.value.code == Refusal.WRONG_RP_ID.value


def test_recorded_registration_with_an_algorithm_not_offered() -> None:
    data = load(FIXTURES / "registration_tpm_surface_pro_4.json")  # RS256 (Windows Hello)
    with pytest.raises(AttestationRefused) as excinfo:
        register(data, AttestationPolicy(), algorithms=(Algorithm.EDDSA, Algorithm.ES256))
    assert excinfo.value.code == Refusal.ALGORITHM_NOT_ALLOWED.value


def authenticate(data: dict[str, Any], **kwargs: Any) -> Any:
    ids = assertion_ids(data["credential"])
    stored = StoredCredential(
        credential_id=ids.credential_id,
        public_key=b64url_decode(data["credential_public_key"]),
        sign_count=kwargs.pop("sign_count", data["sign_count"]),
        backup_eligible=False,
    )
    return verify_authentication(
        credential=data["credential"],
        stored=stored,
        user_handle=ids.user_handle or b"usr_unused",
        rp=relying_party(data),
        expected_challenge=b64url_decode(data["challenge"]),
        allow_credentials=[ids.credential_id],
        **kwargs,
    )


@pytest.mark.parametrize(
    "path", [p for p in AUTHENTICATIONS if "refusal" not in load(p)["expect"]], ids=lambda p: p.stem
)
def test_recorded_assertion_verifies(path: Path) -> None:
    data = load(path)
    expect = data["expect"]
    result = authenticate(data)
    assert result.sign_count == expect["sign_count"]
    assert result.user_verified is expect["user_verified"]
    assert result.backup_eligible is expect["backup_eligible"]
    with pytest.raises(AssertionRefused) as excinfo:  # the same response, seen once already
        authenticate(data, sign_count=expect["sign_count"])
    assert excinfo.value.code == Refusal.COUNTER_REGRESSION.value


def test_recorded_assertion_with_user_verification_required() -> None:
    data = load(FIXTURES / "authentication_rs256_user_handle.json")
    assert authenticate(data, require_user_verification=True).user_verified
    unverified = load(FIXTURES / "authentication_es256.json")
    with pytest.raises(AssertionRefused) as excinfo:
        authenticate(unverified, require_user_verification=True)
    assert excinfo.value.code == Refusal.USER_NOT_VERIFIED.value


def test_recorded_assertion_signed_by_another_key_is_refused() -> None:
    data = load(FIXTURES / "authentication_signed_by_another_key.json")
    with pytest.raises(AssertionRefused) as excinfo:
        authenticate(data)
    assert excinfo.value.code == data["expect"]["refusal"]
