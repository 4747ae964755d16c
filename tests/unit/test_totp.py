"""TOTP (RFC 6238) / HOTP (RFC 4226): spec vectors, window, replay, input shape, enrollment."""

from __future__ import annotations

import base64
import hashlib
import hmac
import types
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest

from bastion.errors import ConfigurationError, InvalidCode
from bastion.factors import totp as totp_module
from bastion.factors.totp import (
    VerifiedTotp,
    hotp,
    new_totp_secret,
    provisioning_uri,
    qr_svg,
    time_step,
    totp_code,
    verify_totp,
)

# RFC 4226 Appendix D: secret "12345678901234567890", counters 0..9.
RFC4226_KEY = b"12345678901234567890"
RFC4226_HOTP = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]

# RFC 6238 Appendix B: seeds per hash (20/32/64 bytes), 8 digits, X = 30 s, T0 = 0.
RFC6238_SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238_VECTORS = [
    # (unix time, T hex, sha1, sha256, sha512)
    (59, 0x1, "94287082", "46119246", "90693936"),
    (1111111109, 0x23523EC, "07081804", "68084774", "25091201"),
    (1111111111, 0x23523ED, "14050471", "67062674", "99943326"),
    (1234567890, 0x273EF07, "89005924", "91819424", "93441116"),
    (2000000000, 0x3F940AA, "69279037", "90698825", "38618901"),
    (20000000000, 0x27BC86AA, "65353130", "77737706", "47863826"),
]
RFC6238_ROWS = [
    pytest.param(t, step, digest, code, id=f"{t}-{digest}")
    for t, step, *codes in RFC6238_VECTORS
    for digest, code in zip(("sha1", "sha256", "sha512"), codes, strict=True)
]

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# Mid-step, so "±30 s" lands on the neighbouring steps and nowhere else.
NOW = datetime(2025, 3, 14, 15, 9, 15, tzinfo=UTC)
STEP = time_step(NOW)


def code_at(offset_steps: int, secret: str = SECRET) -> str:
    return totp_code(secret=secret, now=NOW + timedelta(seconds=30 * offset_steps))


# --- RFC vectors ------------------------------------------------------------------------------


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(RFC4226_HOTP)))
def test_rfc4226_appendix_d_hotp(counter: int, expected: str) -> None:
    assert hotp(RFC4226_KEY, counter) == expected
    assert hotp(base64.b32encode(RFC4226_KEY).decode(), counter) == expected


@pytest.mark.parametrize(("unix", "step", "digest", "expected"), RFC6238_ROWS)
def test_rfc6238_appendix_b_totp(unix: int, step: int, digest: str, expected: str) -> None:
    now = datetime.fromtimestamp(unix, UTC)
    seed = RFC6238_SEEDS[digest]
    assert time_step(now) == step
    assert totp_code(secret=seed, now=now, digits=8, digest=digest) == expected


@pytest.mark.parametrize(("unix", "step", "digest", "expected"), RFC6238_ROWS)
def test_rfc6238_appendix_b_verifies(unix: int, step: int, digest: str, expected: str) -> None:
    result = verify_totp(
        secret=base64.b32encode(RFC6238_SEEDS[digest]).decode(),
        code=expected,
        now=datetime.fromtimestamp(unix, UTC),
        last_used_step=0,
        window=0,
        digits=8,
        digest=digest,
    )
    assert result == VerifiedTotp(step=step, drift=0)


# --- window -----------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_codes_within_one_step_are_accepted(offset: int) -> None:
    result = verify_totp(secret=SECRET, code=code_at(offset), now=NOW, last_used_step=0)
    assert result.step == STEP + offset
    assert result.drift == offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_codes_two_or_more_steps_away_are_rejected(offset: int) -> None:
    with pytest.raises(InvalidCode):
        verify_totp(secret=SECRET, code=code_at(offset), now=NOW, last_used_step=0)


def test_window_zero_accepts_only_the_current_step() -> None:
    verify_totp(secret=SECRET, code=code_at(0), now=NOW, last_used_step=0, window=0)
    with pytest.raises(InvalidCode):
        verify_totp(secret=SECRET, code=code_at(1), now=NOW, last_used_step=0, window=0)


def test_step_boundary_uses_floor_of_unix_time() -> None:
    edge = datetime.fromtimestamp(30 * STEP, UTC)
    assert time_step(edge) == STEP
    assert time_step(edge - timedelta(microseconds=1)) == STEP - 1


# --- replay -----------------------------------------------------------------------------------


def test_same_step_is_accepted_once() -> None:
    first = verify_totp(secret=SECRET, code=code_at(0), now=NOW, last_used_step=0)
    with pytest.raises(InvalidCode) as info:
        verify_totp(secret=SECRET, code=code_at(0), now=NOW, last_used_step=first.step)
    assert info.value.fields["reason"] == "replayed"


def test_older_step_after_a_newer_one_is_rejected() -> None:
    newer = verify_totp(secret=SECRET, code=code_at(1), now=NOW, last_used_step=0)
    for offset in (0, -1):
        with pytest.raises(InvalidCode):
            verify_totp(secret=SECRET, code=code_at(offset), now=NOW, last_used_step=newer.step)


def test_next_step_after_a_used_one_is_accepted() -> None:
    first = verify_totp(secret=SECRET, code=code_at(0), now=NOW, last_used_step=0)
    later = NOW + timedelta(seconds=30)
    second = verify_totp(secret=SECRET, code=code_at(1), now=later, last_used_step=first.step)
    assert second.step == first.step + 1


# --- input shape ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "",
        "12345",
        "1234567",
        "abcdef",
        "12345a",
        "١٢٣٤٥٦",
        "\uff11\uff12\uff13\uff14\uff15\uff16",
        "+12345",
        "-12345",
        "1" * 500,
    ],
)
def test_malformed_codes_are_rejected(code: str) -> None:
    with pytest.raises(InvalidCode) as info:
        verify_totp(secret=SECRET, code=code, now=NOW, last_used_step=0)
    assert info.value.fields["reason"] == "malformed"
    assert "6-digit" in info.value.detail


def test_spaces_in_the_code_are_ignored() -> None:
    code = code_at(0)
    result = verify_totp(secret=SECRET, code=f" {code[:3]} {code[3:]} ", now=NOW, last_used_step=0)
    assert result.step == STEP


def test_wrong_code_is_rejected_as_mismatch() -> None:
    wrong = f"{(int(code_at(0)) + 1) % 1_000_000:06d}"
    with pytest.raises(InvalidCode) as info:
        verify_totp(secret=SECRET, code=wrong, now=NOW, last_used_step=0)
    assert info.value.fields["reason"] == "mismatch"


def test_every_candidate_step_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(totp_module, "hmac", types.SimpleNamespace(compare_digest=spy))
    verify_totp(secret=SECRET, code=code_at(-1), now=NOW, last_used_step=0)
    assert len(calls) == 3  # no early exit on the first (matching) step


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        verify_totp(secret=SECRET, code="123456", now=datetime(2025, 1, 1), last_used_step=0)


@pytest.mark.parametrize("secret", ["not base32!", "AAAA"])
def test_malformed_stored_secret_is_a_server_fault(secret: str) -> None:
    with pytest.raises(ConfigurationError):
        verify_totp(secret=secret, code="123456", now=NOW, last_used_step=0)


@pytest.mark.parametrize(
    "kwargs", [{"digits": 5}, {"digits": 9}, {"digest": "md5"}, {"window": -1}]
)
def test_unsupported_parameters_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"digits|digest|window"):
        verify_totp(secret=SECRET, code="123456", now=NOW, last_used_step=0, **kwargs)


# --- enrollment -------------------------------------------------------------------------------


def test_new_secret_has_at_least_160_bits_and_is_base32() -> None:
    secret = new_totp_secret()
    assert len(base64.b32decode(secret)) * 8 >= 160
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert "=" not in secret


def test_new_secrets_are_unique() -> None:
    assert len({new_totp_secret() for _ in range(200)}) == 200


def test_provisioning_uri_parses_with_app_defaults() -> None:
    secret = new_totp_secret()
    uri = provisioning_uri(secret=secret, account_name="alice@example.com", issuer="Bastion")
    assert uri.startswith("otpauth://totp/Bastion:alice%40example.com?")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.secret == secret
    assert parsed.name == "alice@example.com"
    assert parsed.issuer == "Bastion"
    assert parsed.digits == 6
    assert parsed.interval == 30
    assert parsed.digest is hashlib.sha1
    assert parsed.at(NOW) == totp_code(secret=secret, now=NOW)


def test_qr_svg_is_an_inline_svg_without_the_secret_in_clear() -> None:
    secret = new_totp_secret()
    svg = qr_svg(provisioning_uri(secret=secret, account_name="alice", issuer="Bastion"))
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert secret not in svg
