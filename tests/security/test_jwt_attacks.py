"""JWT attacks against ``verify_access_token``: one test per attack, named after it.

Malicious tokens are built by hand (base64url JSON + signature), as an attacker would,
starting from a valid token and changing one thing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bastion.errors import InvalidToken
from bastion.tokens.access import issue_access_token, verify_access_token
from bastion.tokens.signing_keys import KeyRing, jwk_thumbprint, public_jwk

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOW = int(T0.timestamp())
ISSUER = "https://bastion.example"
AUDIENCE = "bastion"

Signer = Callable[[bytes], bytes]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Signer | None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign is not None else b""
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.load_or_create(tmp_path / "keys", now=T0)


@pytest.fixture
def header(ring: KeyRing) -> dict[str, Any]:
    return {"alg": "EdDSA", "typ": "at+jwt", "kid": ring.active.kid}


@pytest.fixture
def claims() -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "sub": "usr_mallory",
        "aud": AUDIENCE,
        "exp": NOW + 600,
        "iat": NOW,
        "nbf": NOW,
        "jti": "j" * 22,
        "auth_time": NOW - 5,
        "acr": "aal2",
        "amr": ["pwd", "otp"],
        "tenant": "default",
        "roles": ["viewer"],
        "sid": "ses_1",
    }


@pytest.fixture
def real_key(ring: KeyRing) -> Signer:
    return ring.active.private_key.sign


@pytest.fixture
def attacker_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def verify(ring: KeyRing, token: str, now: datetime = T0) -> None:
    verify_access_token(token=token, keyring=ring, issuer=ISSUER, audience=AUDIENCE, now=now)


def rejected(ring: KeyRing, token: str, now: datetime = T0) -> InvalidToken:
    with pytest.raises(InvalidToken) as caught:
        verify(ring, token, now)
    assert caught.value.code == "invalid_token"
    return caught.value


def test_baseline_forged_token_with_the_real_key_verifies(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    # The control: every attack below changes one thing of this token.
    verify(ring, forge(header, claims, real_key))


# -- algorithm confusion -------------------------------------------------------------------


def test_jwt_alg_none_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    for alg in ("none", "None", "NONE", "nOnE"):
        token = forge({**header, "alg": alg}, claims, None)
        assert "algorithm" in rejected(ring, token).detail


def test_jwt_missing_alg_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    del header["alg"]
    assert "algorithm" in rejected(ring, forge(header, claims, real_key)).detail


@pytest.mark.parametrize("alg", ["eddsa", "EdDSA ", "Ed25519", "ES256", "RS256", ["EdDSA"]])
def test_jwt_alg_other_than_eddsa_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer, alg: Any
) -> None:
    token = forge({**header, "alg": alg}, claims, real_key)
    assert "algorithm" in rejected(ring, token).detail


def test_jwt_hs256_signed_with_public_key_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    public = ring.active.public_key
    candidates = [
        public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        json.dumps(ring.jwks(now=T0)["keys"][0]).encode(),
    ]
    for secret in candidates:

        def hs256(data: bytes, secret: bytes = secret) -> bytes:
            return hmac.new(secret, data, hashlib.sha256).digest()

        token = forge({**header, "alg": "HS256"}, claims, hs256)
        assert "algorithm" in rejected(ring, token).detail


# -- keys the token points at --------------------------------------------------------------


def test_jwt_unknown_kid_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], attacker_key: Ed25519PrivateKey
) -> None:
    header["kid"] = jwk_thumbprint(attacker_key.public_key())
    assert "unknown key" in rejected(ring, forge(header, claims, attacker_key.sign)).detail


def test_jwt_missing_kid_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    del header["kid"]
    assert "key id" in rejected(ring, forge(header, claims, real_key)).detail


def test_jwt_path_traversal_kid_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    header["kid"] = "../../../etc/passwd"
    assert "key id" in rejected(ring, forge(header, claims, real_key)).detail


def test_jwt_signed_by_foreign_key_with_our_kid_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], attacker_key: Ed25519PrivateKey
) -> None:
    assert "signature" in rejected(ring, forge(header, claims, attacker_key.sign)).detail


def test_jwt_jku_header_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    header["jku"] = "https://attacker.example/jwks.json"
    assert "'jku'" in rejected(ring, forge(header, claims, real_key)).detail


def test_jwt_x5u_header_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    header["x5u"] = "https://attacker.example/cert.pem"
    assert "'x5u'" in rejected(ring, forge(header, claims, real_key)).detail


def test_jwt_embedded_jwk_header_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], attacker_key: Ed25519PrivateKey
) -> None:
    # The attacker signs with their own key and ships its public half in the header.
    embedded = public_jwk(attacker_key.public_key())
    forged = {**header, "jwk": embedded}
    assert "'jwk'" in rejected(ring, forge(forged, claims, attacker_key.sign)).detail
    forged["kid"] = jwk_thumbprint(attacker_key.public_key())
    assert "'jwk'" in rejected(ring, forge(forged, claims, attacker_key.sign)).detail


def test_jwt_x5c_header_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    header["x5c"] = [b64(b"not really a certificate")]
    assert "'x5c'" in rejected(ring, forge(header, claims, real_key)).detail


def test_jwt_crit_header_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    header["crit"] = ["exp"]
    assert "'crit'" in rejected(ring, forge(header, claims, real_key)).detail


def test_jwt_unencoded_payload_b64_false_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    # RFC 7797 detached/unencoded payloads must not sneak in without `crit` either.
    header["b64"] = False
    assert "unexpected" in rejected(ring, forge(header, claims, real_key)).detail


def test_jwt_duplicate_header_member_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    # Parser differential: one JSON parser takes the first "alg", another the last.
    raw = json.dumps(header)[:-1] + ', "alg": "none"}'
    payload = b64(json.dumps(claims).encode())
    signing_input = f"{b64(raw.encode())}.{payload}"
    token = f"{signing_input}.{b64(real_key(signing_input.encode()))}"
    assert "JSON" in rejected(ring, token).detail


# -- token type ----------------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["JWT", "id_token+jwt", "dpop+jwt", "", None])
def test_jwt_wrong_typ_rejected(
    ring: KeyRing,
    header: dict[str, Any],
    claims: dict[str, Any],
    real_key: Signer,
    typ: str | None,
) -> None:
    # An ID token or a DPoP proof signed by the same key is not an access token.
    if typ is None:
        del header["typ"]
    else:
        header["typ"] = typ
    assert "typ" in rejected(ring, forge(header, claims, real_key)).detail


# -- integrity -----------------------------------------------------------------------------


def test_jwt_tampered_payload_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    token = forge(header, claims, real_key)
    header_b64, _, signature_b64 = token.split(".")
    escalated = b64(json.dumps({**claims, "roles": ["admin"]}).encode())
    assert "signature" in rejected(ring, f"{header_b64}.{escalated}.{signature_b64}").detail


def test_jwt_tampered_header_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    token = forge(header, claims, real_key)
    _, payload_b64, signature_b64 = token.split(".")
    other_header = b64(json.dumps({**header, "typ": "application/at+jwt"}).encode())
    assert "signature" in rejected(ring, f"{other_header}.{payload_b64}.{signature_b64}").detail


def test_jwt_bad_signature_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    signing_input = forge(header, claims, None)[:-1]
    signature = bytearray(real_key(signing_input.encode()))
    signature[0] ^= 1
    assert "signature" in rejected(ring, f"{signing_input}.{b64(bytes(signature))}").detail


def test_jwt_truncated_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    token = forge(header, claims, real_key)
    header_b64, payload_b64, _ = token.split(".")
    for truncated in (
        token[:-1],
        token[:-4],
        token[: token.rindex(".") + 1],  # signature stripped, dot kept
        f"{header_b64}.{payload_b64}",  # two segments
        header_b64,
        token[: len(token) // 2],
    ):
        rejected(ring, truncated)


def test_jwt_extra_segments_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    token = forge(header, claims, real_key)
    assert "compact" in rejected(ring, token + ".AAAA.AAAA").detail  # JWE-shaped


def test_jwt_bad_base64_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    header_b64, payload_b64, signature_b64 = forge(header, claims, real_key).split(".")
    for token in (
        f"{header_b64}.{payload_b64}+.{signature_b64}",
        f"{header_b64}=.{payload_b64}.{signature_b64}",
        f"{header_b64}.{payload_b64}.{signature_b64}!!",
        f"{header_b64}.{payload_b64}.{signature_b64}AAA",  # length ≡ 1 (mod 4)
    ):
        assert "base64url" in rejected(ring, token).detail


def test_jwt_non_canonical_signature_encoding_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    # 64 bytes leave 4 unused bits in the last character: flipping them must not yield a
    # second valid spelling of the same token (cache keys and deny-lists hash the string).
    token = forge(header, claims, real_key)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    twin = token[:-1] + alphabet[last ^ 1]
    assert base64.urlsafe_b64decode(twin.rsplit(".", 1)[1] + "==") == base64.urlsafe_b64decode(
        token.rsplit(".", 1)[1] + "=="
    )
    verify(ring, token)
    assert "canonical" in rejected(ring, twin).detail


def test_jwt_bad_json_rejected(ring: KeyRing, real_key: Signer) -> None:
    for raw_header in (b"{not json", b"[1,2]", b'"EdDSA"'):
        signing_input = f"{b64(raw_header)}.{b64(b'{}')}"
        token = f"{signing_input}.{b64(real_key(signing_input.encode()))}"
        assert "JSON" in rejected(ring, token).detail


def test_jwt_oversized_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    token = forge(header, {**claims, "padding": "x" * 9000}, real_key)
    assert len(token) > 8 * 1024
    assert "too large" in rejected(ring, token).detail


# -- time ----------------------------------------------------------------------------------


def test_jwt_expired_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    claims.update(iat=NOW - 900, nbf=NOW - 900, auth_time=NOW - 900, exp=NOW - 30)
    assert "expired" in rejected(ring, forge(header, claims, real_key)).detail


def test_jwt_not_yet_valid_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    claims["nbf"] = NOW + 31
    assert "not valid yet" in rejected(ring, forge(header, claims, real_key)).detail


def test_jwt_issued_in_the_future_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    claims.update(iat=NOW + 300, exp=NOW + 900)
    assert "future" in rejected(ring, forge(header, claims, real_key)).detail


def test_jwt_lifetime_over_15_minutes_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    claims["exp"] = NOW + 900 + 31  # beyond 15 min + 30 s leeway
    assert "lifetime" in rejected(ring, forge(header, claims, real_key)).detail
    claims["exp"] = NOW + 30 * 86400
    assert "lifetime" in rejected(ring, forge(header, claims, real_key)).detail


# -- who it is for / from ------------------------------------------------------------------


def test_jwt_wrong_audience_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    for aud in ("another-service", ["another-service"], "Bastion"):
        claims["aud"] = aud
        assert "audience" in rejected(ring, forge(header, claims, real_key)).detail


def test_jwt_wrong_issuer_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer
) -> None:
    for iss in ("https://attacker.example", ISSUER + "/", ISSUER.upper()):
        claims["iss"] = iss
        assert "issued by someone else" in rejected(ring, forge(header, claims, real_key)).detail


@pytest.mark.parametrize(
    "claim",
    ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "acr", "amr", "tenant", "roles"],
)
def test_jwt_missing_required_claim_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any], real_key: Signer, claim: str
) -> None:
    del claims[claim]
    assert f"no '{claim}' claim" in rejected(ring, forge(header, claims, real_key)).detail


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("iss", 1),
        ("sub", ["usr_mallory"]),
        ("sub", ""),
        ("aud", 7),
        ("aud", []),
        ("exp", str(NOW + 600)),
        ("exp", float(NOW + 600)),
        ("exp", True),
        ("iat", None),
        ("nbf", "0"),
        ("jti", 5),
        ("auth_time", "yesterday"),
        ("acr", ["aal3"]),
        ("amr", "pwd"),
        ("amr", [1]),
        ("tenant", {"id": "default"}),
        ("roles", "admin"),
        ("roles", [["admin"]]),
        ("sid", 3),
    ],
)
def test_jwt_wrong_claim_types_rejected(
    ring: KeyRing,
    header: dict[str, Any],
    claims: dict[str, Any],
    real_key: Signer,
    claim: str,
    value: Any,
) -> None:
    claims[claim] = value
    assert "wrong type" in rejected(ring, forge(header, claims, real_key)).detail


# -- key rotation --------------------------------------------------------------------------


def test_jwt_signed_by_retired_expired_key_rejected(
    ring: KeyRing, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    # An attacker holding a stolen *retired* key mints a fresh token once the key has aged out.
    old = ring.active
    ring.rotate(now=T0)
    later = T0 + timedelta(seconds=900 + 30)
    at = int(later.timestamp())
    claims.update(iat=at, nbf=at, exp=at + 600, auth_time=at)
    token = forge({**header, "kid": old.kid}, claims, old.private_key.sign)
    assert "retired key" in rejected(ring, token, later).detail


def test_jwt_token_of_the_previous_key_verifies_until_it_ages_out(ring: KeyRing) -> None:
    issued = issue_access_token(
        keyring=ring,
        issuer=ISSUER,
        audience=AUDIENCE,
        subject="usr_alice",
        tenant="default",
        roles=["viewer"],
        acr="aal2",
        amr=["pwd", "otp"],
        auth_time=T0,
        session_id="ses_1",
        ttl=900,
        now=T0,
    )
    old_kid = ring.active.kid
    rotated_at = T0 + timedelta(seconds=60)
    ring.rotate(now=rotated_at)
    published = {jwk["kid"] for jwk in ring.jwks(now=rotated_at, max_token_ttl=900)["keys"]}
    assert published == {old_kid, ring.active.kid}
    verify(ring, issued.token, T0 + timedelta(seconds=900))  # still alive: still verifies
    gone = rotated_at + timedelta(seconds=900 + 30)
    assert old_kid not in {jwk["kid"] for jwk in ring.jwks(now=gone, max_token_ttl=900)["keys"]}
    rejected(ring, issued.token, gone)
