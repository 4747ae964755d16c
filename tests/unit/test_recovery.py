"""Recovery codes: generation, normalisation, hashing, verification."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import types
from typing import Any

import pytest

from bastion.errors import InvalidCode
from bastion.factors import recovery as recovery_module
from bastion.factors.recovery import (
    CODE_LENGTH,
    VerifiedRecoveryCode,
    generate_recovery_codes,
    hash_recovery_code,
    normalize_recovery_code,
    verify_recovery_code,
)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SHAPE = re.compile(rf"^[{CROCKFORD}]{{4}}(-[{CROCKFORD}]{{4}}){{3}}$")


def stored(codes: list[str]) -> dict[str, str]:
    return {f"rc_{i}": hash_recovery_code(code) for i, code in enumerate(codes)}


def test_generates_ten_grouped_codes_by_default() -> None:
    codes = generate_recovery_codes()
    assert len(codes) == 10
    assert all(SHAPE.match(code) for code in codes)
    assert len(set(codes)) == 10


def test_each_code_has_at_least_64_bits_of_entropy() -> None:
    assert CODE_LENGTH * math.log2(len(CROCKFORD)) >= 80 > 64


def test_codes_use_the_whole_alphabet_and_are_not_repeated() -> None:
    codes = generate_recovery_codes(100)
    assert len(set(codes)) == 100
    assert set("".join(codes).replace("-", "")) == set(CROCKFORD)


@pytest.mark.parametrize("count", [1, 16])
def test_count_is_honoured(count: int) -> None:
    assert len(generate_recovery_codes(count)) == count


@pytest.mark.parametrize("count", [0, -1, 101])
def test_unreasonable_count_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="count"):
        generate_recovery_codes(count)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ABCD-EFGH-JKMN-PQRS", "ABCDEFGHJKMNPQRS"),
        ("abcd efgh jkmn pqrs", "ABCDEFGHJKMNPQRS"),
        (" abcd-efgh\tjkmn-pqrs\n", "ABCDEFGHJKMNPQRS"),
        ("O0o0-IiLl-1111-2222", "0000111111112222"),
    ],
)
def test_normalize_follows_crockford(typed: str, expected: str) -> None:
    assert normalize_recovery_code(typed) == expected


def test_hash_is_sha256_hex_of_the_normalised_code() -> None:
    digest = hash_recovery_code("abcd-efgh-jkmn-pqrs")
    assert digest == hashlib.sha256(b"ABCDEFGHJKMNPQRS").hexdigest()
    assert len(digest) == 64  # fits recovery_codes.code_hash
    assert hash_recovery_code("ABCD EFGH JKMN PQRS") == digest


def test_verify_returns_the_matching_id() -> None:
    codes = generate_recovery_codes()
    assert verify_recovery_code(presented=codes[3], unused_hashes=stored(codes)) == (
        VerifiedRecoveryCode(code_id="rc_3")
    )


def test_verify_accepts_sloppy_typing() -> None:
    codes = ["0123-4567-89AB-CDEF"]
    typed = " o123 4567 89ab cdef "
    assert verify_recovery_code(presented=typed, unused_hashes=stored(codes)).code_id == "rc_0"


def test_wrong_code_is_rejected() -> None:
    codes = generate_recovery_codes()
    other = generate_recovery_codes(1)[0]
    with pytest.raises(InvalidCode) as info:
        verify_recovery_code(presented=other, unused_hashes=stored(codes))
    assert info.value.fields["reason"] == "mismatch"


def test_no_unused_codes_means_rejection() -> None:
    code = generate_recovery_codes(1)[0]
    with pytest.raises(InvalidCode):
        verify_recovery_code(presented=code, unused_hashes={})


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "ABCD-EFGH-JKMN-PQR",
        "ABCD-EFGH-JKMN-PQRST",
        "ABCD-EFGH-JKMN-PQRU",
        "\u00c4BCD-EFGH-JKMN-PQRS",
        "A" * 1000,
    ],
)
def test_malformed_codes_are_rejected(presented: str) -> None:
    with pytest.raises(InvalidCode) as info:
        verify_recovery_code(presented=presented, unused_hashes={"rc_1": "0" * 64})
    assert info.value.fields["reason"] == "malformed"


def test_every_unused_code_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def spy(a: Any, b: Any) -> bool:
        nonlocal calls
        calls += 1
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(recovery_module, "hmac", types.SimpleNamespace(compare_digest=spy))
    codes = generate_recovery_codes()
    verify_recovery_code(presented=codes[0], unused_hashes=stored(codes))
    assert calls == 10  # no early exit on the first match
