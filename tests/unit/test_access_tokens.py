"""Access tokens: issue, verify, claims, types and time checks against an injected clock."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from bastion.clock import ManualClock
from bastion.errors import InvalidToken
from bastion.tokens.access import (
    IssuedToken,
    VerifiedAccessToken,
    issue_access_token,
    verify_access_token,
)
from bastion.tokens.signing_keys import KeyRing

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ISSUER = "https://bastion.example"
AUDIENCE = "bastion"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.load_or_create(tmp_path / "keys", now=T0)


def _issue(ring: KeyRing, now: datetime, **overrides: Any) -> IssuedToken:
    arguments: dict[str, Any] = {
        "keyring": ring,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "subject": "usr_alice",
        "tenant": "default",
        "roles": ["developer"],
        "acr": "aal2",
        "amr": ["pwd", "otp"],
        "auth_time": now - timedelta(seconds=10),
        "session_id": "ses_1",
        "ttl": 900,
        "now": now,
    }
    arguments.update(overrides)
    return issue_access_token(**arguments)


def _verify(ring: KeyRing, token: str, now: datetime, **overrides: Any) -> VerifiedAccessToken:
    arguments: dict[str, Any] = {
        "token": token,
        "keyring": ring,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "now": now,
    }
    arguments.update(overrides)
    return verify_access_token(**arguments)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _resign(ring: KeyRing, token: str, change: Callable[[dict[str, Any]], None]) -> str:
    """Decode our own token's claims, change them, and sign again with the real key."""
    header_b64, payload_b64, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    change(claims)
    signing_input = f"{header_b64}.{_b64(json.dumps(claims).encode())}"
    signature = ring.active.private_key.sign(signing_input.encode())
    return f"{signing_input}.{_b64(signature)}"


# -- issue ---------------------------------------------------------------------------------


def test_issued_token_has_rfc9068_header_and_claims(ring: KeyRing, clock: ManualClock) -> None:
    issued = _issue(ring, clock.now())
    header = jwt.get_unverified_header(issued.token)
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": ring.active.kid}
    claims = jwt.decode(
        issued.token,
        ring.active.public_key,
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    now = int(T0.timestamp())
    assert claims == {
        "iss": ISSUER,
        "sub": "usr_alice",
        "aud": AUDIENCE,
        "exp": now + 900,
        "iat": now,
        "nbf": now,
        "jti": issued.jti,
        "auth_time": now - 10,
        "acr": "aal2",
        "amr": ["pwd", "otp"],
        "tenant": "default",
        "roles": ["developer"],
        "sid": "ses_1",
    }
    assert issued.expires_at == T0 + timedelta(seconds=900)


def test_jti_is_128_bit_random_and_unique(ring: KeyRing, clock: ManualClock) -> None:
    jtis = {_issue(ring, clock.now()).jti for _ in range(200)}
    assert len(jtis) == 200
    assert all(len(base64.urlsafe_b64decode(j + "==")) == 16 for j in jtis)


@pytest.mark.parametrize("ttl", [901, 3600, 0, -1])
def test_ttl_outside_1_to_900_is_refused(ring: KeyRing, clock: ManualClock, ttl: int) -> None:
    with pytest.raises(ValueError, match=r"ttl|900"):
        _issue(ring, clock.now(), ttl=ttl)


def test_extra_claims_round_trip_but_cannot_override_registered_ones(
    ring: KeyRing, clock: ManualClock
) -> None:
    issued = _issue(ring, clock.now(), extra={"scope": "read", "cnf": {"jkt": "abc"}})
    verified = _verify(ring, issued.token, clock.now())
    assert verified.extra == {"scope": "read", "cnf": {"jkt": "abc"}}
    with pytest.raises(ValueError, match="override"):
        _issue(ring, clock.now(), extra={"roles": ["admin"]})


def test_issue_refuses_a_string_for_roles(ring: KeyRing, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="sequences"):
        _issue(ring, clock.now(), roles="admin")


# -- verify --------------------------------------------------------------------------------


def test_verify_returns_typed_claims(ring: KeyRing, clock: ManualClock) -> None:
    issued = _issue(ring, clock.now())
    clock.advance(60)
    verified = _verify(ring, issued.token, clock.now())
    assert verified == VerifiedAccessToken(
        issuer=ISSUER,
        subject="usr_alice",
        audience=(AUDIENCE,),
        expires_at=T0 + timedelta(seconds=900),
        issued_at=T0,
        not_before=T0,
        jti=issued.jti,
        auth_time=T0 - timedelta(seconds=10),
        acr="aal2",
        amr=("pwd", "otp"),
        tenant="default",
        roles=("developer",),
        session_id="ses_1",
        kid=ring.active.kid,
    )
    assert verified.auth_time.tzinfo is not None


def test_verified_token_is_frozen(ring: KeyRing, clock: ManualClock) -> None:
    verified = _verify(ring, _issue(ring, clock.now()).token, clock.now())
    with pytest.raises(AttributeError):
        verified.roles = ("admin",)  # type: ignore[misc]


def test_token_without_session_has_no_sid(ring: KeyRing, clock: ManualClock) -> None:
    issued = _issue(ring, clock.now(), session_id=None)
    assert "sid" not in jwt.decode(issued.token, options={"verify_signature": False})
    assert _verify(ring, issued.token, clock.now()).session_id is None


def test_expiry_follows_the_injected_clock_with_leeway(ring: KeyRing, clock: ManualClock) -> None:
    issued = _issue(ring, clock.now(), ttl=300)
    clock.advance(300 + 29)  # exp + 29 s: inside the 30 s leeway
    _verify(ring, issued.token, clock.now(), leeway=30)
    clock.advance(1)  # exp + 30 s
    with pytest.raises(InvalidToken, match="expired"):
        _verify(ring, issued.token, clock.now(), leeway=30)


def test_zero_leeway_expires_exactly_at_exp(ring: KeyRing, clock: ManualClock) -> None:
    issued = _issue(ring, clock.now(), ttl=60)
    clock.advance(59)
    _verify(ring, issued.token, clock.now(), leeway=0)
    clock.advance(1)
    with pytest.raises(InvalidToken, match="expired"):
        _verify(ring, issued.token, clock.now(), leeway=0)


def test_small_clock_skew_before_nbf_is_accepted(ring: KeyRing, clock: ManualClock) -> None:
    issued = _issue(ring, clock.now())
    _verify(ring, issued.token, clock.now() - timedelta(seconds=30), leeway=30)
    with pytest.raises(InvalidToken, match="not valid yet"):
        _verify(ring, issued.token, clock.now() - timedelta(seconds=31), leeway=30)


@pytest.mark.parametrize("leeway", [-1, 121, 3600])
def test_leeway_is_bounded(ring: KeyRing, clock: ManualClock, leeway: int) -> None:
    issued = _issue(ring, clock.now())
    with pytest.raises(ValueError, match="leeway"):
        _verify(ring, issued.token, clock.now(), leeway=leeway)


def test_naive_now_is_refused(ring: KeyRing, clock: ManualClock) -> None:
    issued = _issue(ring, clock.now())
    with pytest.raises(ValueError, match="aware"):
        _verify(ring, issued.token, datetime(2025, 3, 1, 12, 0))


def test_full_media_type_is_accepted(ring: KeyRing, clock: ManualClock) -> None:
    # RFC 9068 §4: "at+jwt" or "application/at+jwt".
    token = jwt.encode(
        jwt.decode(_issue(ring, clock.now()).token, options={"verify_signature": False}),
        ring.active.private_key,
        algorithm="EdDSA",
        headers={"typ": "application/at+jwt", "kid": ring.active.kid},
    )
    _verify(ring, token, clock.now())


def test_audience_list_containing_ours_is_accepted(ring: KeyRing, clock: ManualClock) -> None:
    def change(claims: dict[str, Any]) -> None:
        claims["aud"] = ["other", AUDIENCE]

    token = _resign(ring, _issue(ring, clock.now()).token, change)
    assert _verify(ring, token, clock.now()).audience == ("other", AUDIENCE)


def test_auth_time_after_issue_is_refused(ring: KeyRing, clock: ManualClock) -> None:
    def change(claims: dict[str, Any]) -> None:
        claims["auth_time"] = claims["iat"] + 31

    token = _resign(ring, _issue(ring, clock.now()).token, change)
    with pytest.raises(InvalidToken, match="authentication time"):
        _verify(ring, token, clock.now())


def test_exp_before_iat_is_refused(ring: KeyRing, clock: ManualClock) -> None:
    def change(claims: dict[str, Any]) -> None:
        claims["iat"] = claims["exp"]

    token = _resign(ring, _issue(ring, clock.now()).token, change)
    with pytest.raises(InvalidToken):
        _verify(ring, token, clock.now())


def test_empty_or_non_string_token_is_refused(ring: KeyRing, clock: ManualClock) -> None:
    with pytest.raises(InvalidToken):
        _verify(ring, "", clock.now())
    with pytest.raises(InvalidToken):
        _verify(ring, None, clock.now())


def test_non_ascii_token_is_refused(ring: KeyRing, clock: ManualClock) -> None:
    token = _issue(ring, clock.now()).token
    with pytest.raises(InvalidToken):
        _verify(ring, token[:-1] + "é", clock.now())


def test_error_details_are_our_own(ring: KeyRing, clock: ManualClock) -> None:
    token = _issue(ring, clock.now()).token
    for broken in (token + "x", token.replace(".", "!", 1), "a.b.c", token[:-2]):
        with pytest.raises(InvalidToken) as caught:
            _verify(ring, broken, clock.now())
        assert caught.value.detail.startswith("The token")
        assert caught.value.code == "invalid_token"
