"""Passwords: argon2id hashing/verification and NIST SP 800-63B-4 rules for new passwords."""

from __future__ import annotations

from typing import Literal

import argon2
import pytest

from bastion.errors import ConfigurationError, InvalidCredentials, ValidationError
from bastion.factors.password import (
    BLOCKLIST_SOURCE,
    MAX_LENGTH,
    burn_dummy_verify,
    check_new_password,
    hash_password,
    is_blocklisted,
    make_hasher,
    verify_password,
)

HASHER = make_hasher("test")
GOOD = "lantern orchard velvet canyon"


def fullwidth(text: str) -> str:
    """ASCII letters as their FULLWIDTH forms (U+FF01..), which NFKC maps back."""
    return text.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})


class SpyHasher(argon2.PasswordHasher):
    """A real hasher that counts verifications."""

    verifies = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        type(self).verifies += 1
        return super().verify(hash, password)


# --- hashing and verification -----------------------------------------------------------------


def test_owasp_profile_parameters_are_encoded_in_the_hash() -> None:
    stored = hash_password(GOOD, hasher=make_hasher("owasp"))
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_test_profile_is_argon2id() -> None:
    assert hash_password(GOOD, hasher=HASHER).startswith("$argon2id$v=19$m=8,t=1,p=1$")


def test_unknown_profile_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        make_hasher("fast")


def test_hash_then_verify() -> None:
    stored = hash_password(GOOD, hasher=HASHER)
    result = verify_password(stored_hash=stored, presented=GOOD, hasher=HASHER)
    assert result.needs_rehash is False


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password(GOOD, hasher=HASHER) != hash_password(GOOD, hasher=HASHER)


@pytest.mark.parametrize(
    "presented",
    [GOOD.upper(), GOOD + " ", GOOD[:-1], "", "lantern orchard velvet canyoN"],
)
def test_wrong_password_raises_invalid_credentials(presented: str) -> None:
    stored = hash_password(GOOD, hasher=HASHER)
    with pytest.raises(InvalidCredentials) as info:
        verify_password(stored_hash=stored, presented=presented, hasher=HASHER)
    assert info.value.code == "invalid_credentials"


@pytest.mark.parametrize(
    "stored",
    ["", "not-a-hash", "$argon2id$v=19$m=8,t=1,p=1$garbage", "$2b$12$abcdefghijklmnopqrstuv"],
)
def test_malformed_stored_hash_raises_invalid_credentials(stored: str) -> None:
    with pytest.raises(InvalidCredentials):
        verify_password(stored_hash=stored, presented=GOOD, hasher=HASHER)


def test_needs_rehash_when_parameters_changed() -> None:
    old = argon2.PasswordHasher(time_cost=2, memory_cost=8, parallelism=1)
    stored = old.hash(GOOD)
    assert verify_password(stored_hash=stored, presented=GOOD, hasher=HASHER).needs_rehash


def test_password_is_nfkc_normalised_before_hashing() -> None:
    # Full-width letters and the "ﬁ" ligature are NFKC-equivalent to plain ASCII.
    stored = hash_password(fullwidth("file cabinet moon"), hasher=HASHER)
    verify_password(stored_hash=stored, presented="file cabinet moon", hasher=HASHER)
    verify_password(stored_hash=stored, presented="\ufb01le cabinet moon", hasher=HASHER)


def test_composed_and_decomposed_accents_verify_alike() -> None:
    stored = hash_password("caf\u00e9 au lait", hasher=HASHER)
    verify_password(stored_hash=stored, presented="cafe\u0301 au lait", hasher=HASHER)


def test_burn_dummy_verify_runs_a_real_verification_and_never_raises() -> None:
    spy = SpyHasher(time_cost=1, memory_cost=8, parallelism=1)
    SpyHasher.verifies = 0
    burn_dummy_verify(GOOD, hasher=spy)
    burn_dummy_verify("", hasher=spy)
    assert SpyHasher.verifies == 2


def test_burn_dummy_verify_uses_the_same_parameters_as_the_hasher() -> None:
    from bastion.factors import password as module

    hasher = argon2.PasswordHasher(time_cost=1, memory_cost=16, parallelism=1)
    burn_dummy_verify(GOOD, hasher=hasher)
    dummies = [h for h in module._dummy_hashes.values() if "$m=16,t=1,p=1$" in h]
    assert len(dummies) == 1
    assert not hasher.check_needs_rehash(dummies[0])


# --- new password rules (SP 800-63B-4 §3.1.1.2) -----------------------------------------------


def _reason(password: str, *, min_length: int = 8, context: tuple[str, ...] = ()) -> str:
    with pytest.raises(ValidationError) as info:
        check_new_password(password, min_length=min_length, context_words=context)
    assert info.value.code == "weak_password"
    assert info.value.status == 422
    assert password not in info.value.detail
    return str(info.value.fields["reason"])


def test_accepts_a_long_lowercase_passphrase_without_composition_rules() -> None:
    assert check_new_password(GOOD, min_length=15) == GOOD


def test_accepts_exactly_min_length() -> None:
    assert check_new_password("kq7vzm2w", min_length=8) == "kq7vzm2w"


def test_rejects_one_below_min_length() -> None:
    assert _reason("kq7vzm2", min_length=8) == "too_short"


def test_min_length_15_when_password_stands_alone() -> None:
    assert _reason("kq7vzm2wplx8rt", min_length=15) == "too_short"
    check_new_password("kq7vzm2wplx8rtn", min_length=15)


def test_too_short_message_says_what_to_do() -> None:
    with pytest.raises(ValidationError) as info:
        check_new_password("kq7vzm2", min_length=8)
    assert "at least 8 characters" in info.value.detail
    assert "passphrase" in info.value.detail
    assert info.value.fields["min_length"] == 8


def test_length_is_counted_in_code_points_after_nfkc() -> None:
    decomposed = "e\u0301" * 4 + "zqvw"  # 12 code points raw, 8 after NFKC
    assert check_new_password(decomposed, min_length=8) == "\u00e9" * 4 + "zqvw"
    assert _reason(decomposed, min_length=9) == "too_short"


def test_emoji_count_as_one_character_each() -> None:
    assert _reason("🦊🌲🔥🧭🛶🌙🎻", min_length=8) == "too_short"  # 7 code points
    check_new_password("🦊🌲🔥🧭🛶🌙🎻🪁", min_length=8)


def test_accepts_64_and_256_characters() -> None:
    words = "orchard lantern velvet canyon thistle marble harbor quartz "
    check_new_password((words * 2)[:64], min_length=15)
    check_new_password((words * 5)[:MAX_LENGTH], min_length=15)


def test_rejects_longer_than_256_characters() -> None:
    words = "orchard lantern velvet canyon thistle marble harbor quartz "
    assert _reason((words * 5)[: MAX_LENGTH + 1]) == "too_long"


@pytest.mark.parametrize("password", ["baseball", "BaseBall", "iloveyou", "passw0rd", "TRUSTNO1"])
def test_rejects_common_passwords_case_insensitively(password: str) -> None:
    assert _reason(password) == "common_password"


def test_common_password_message_suggests_a_passphrase() -> None:
    with pytest.raises(ValidationError) as info:
        check_new_password("sunshine", min_length=8)
    assert "longer passphrase" in info.value.detail


@pytest.mark.parametrize(
    "password", ["aaaaaaaaaaaa", "QQQQQQQQQQQQQQQ", "abcdefghijkl", "zyxwvutsrq", "9876543210"]
)
def test_rejects_repeated_or_sequential_characters(password: str) -> None:
    assert _reason(password) == "repetitive"


@pytest.mark.parametrize(
    ("password", "context"),
    [
        ("alice.smith2024!", ("alice.smith",)),
        ("ALICE.SMITH", ("alice.smith",)),
        ("my bastion vault key", ()),
        ("BastionBastion", ()),
        ("xx ALICE yy zz", ("Alice",)),
    ],
)
def test_rejects_passwords_containing_context_words(
    password: str, context: tuple[str, ...]
) -> None:
    assert _reason(password, context=context) == "contains_context_word"


def test_short_context_words_only_block_exact_matches() -> None:
    check_new_password("a normal quiet evening", min_length=8, context_words=("al", "", " "))


def test_returns_the_normalised_password() -> None:
    assert (
        check_new_password(fullwidth("file") + " cabinet moon", min_length=8) == "file cabinet moon"
    )


@pytest.mark.parametrize("min_length", [0, 7, 65])
def test_min_length_outside_nist_range_is_a_configuration_error(min_length: int) -> None:
    with pytest.raises(ConfigurationError):
        check_new_password(GOOD, min_length=min_length)


def test_blocklist_source_is_named_and_loaded() -> None:
    assert "zxcvbn" in BLOCKLIST_SOURCE
    assert is_blocklisted("Password")
    assert not is_blocklisted(GOOD)
