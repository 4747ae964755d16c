"""Attack regressions for authenticators, sealing and assurance: one test per attack."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import argon2
import pytest

from bastion.authn.assurance import VerifiedFactor, acr_satisfies, compute_assurance
from bastion.errors import ConfigurationError, InvalidCode, InvalidCredentials, ValidationError
from bastion.factors.catalog import CATALOG, Method
from bastion.factors.password import (
    burn_dummy_verify,
    check_new_password,
    hash_password,
    make_hasher,
    verify_password,
)
from bastion.factors.recovery import (
    generate_recovery_codes,
    hash_recovery_code,
    verify_recovery_code,
)
from bastion.factors.totp import new_totp_secret, totp_code, verify_totp
from bastion.sealing import Sealer, SealError, load_or_create_master_key

HASHER = make_hasher("test")
NOW = datetime(2025, 6, 1, 12, 0, 10, tzinfo=UTC)


class CountingHasher(argon2.PasswordHasher):
    verifies = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        type(self).verifies += 1
        return super().verify(hash, password)


def factor(method: Method) -> VerifiedFactor:
    return VerifiedFactor(method=method, amr=CATALOG[method].amr)


# --- TOTP -------------------------------------------------------------------------------------


def test_totp_replay_of_the_same_code_rejected() -> None:
    secret = new_totp_secret()
    code = totp_code(secret=secret, now=NOW)
    first = verify_totp(secret=secret, code=code, now=NOW, last_used_step=0)
    # The attacker (shoulder-surfing, phishing proxy, second replica) replays it seconds later.
    with pytest.raises(InvalidCode):
        verify_totp(
            secret=secret, code=code, now=NOW + timedelta(seconds=5), last_used_step=first.step
        )


def test_totp_older_code_after_newer_rejected() -> None:
    secret = new_totp_secret()
    older = totp_code(secret=secret, now=NOW)
    newer = totp_code(secret=secret, now=NOW + timedelta(seconds=30))
    used = verify_totp(secret=secret, code=newer, now=NOW, last_used_step=0)
    with pytest.raises(InvalidCode):
        verify_totp(secret=secret, code=older, now=NOW, last_used_step=used.step)


def test_totp_stale_code_outside_window_rejected() -> None:
    secret = new_totp_secret()
    stale = totp_code(secret=secret, now=NOW - timedelta(seconds=60))
    with pytest.raises(InvalidCode):
        verify_totp(secret=secret, code=stale, now=NOW, last_used_step=0)


def test_totp_future_code_outside_window_rejected() -> None:
    secret = new_totp_secret()
    future = totp_code(secret=secret, now=NOW + timedelta(seconds=60))
    with pytest.raises(InvalidCode):
        verify_totp(secret=secret, code=future, now=NOW, last_used_step=0)


@pytest.mark.parametrize(
    "digits", ["١٢٣٤٥٦", "۱۲۳۴۵۶", "\uff11\uff12\uff13\uff14\uff15\uff16", "߁߂߃߄߅߆", "¹²³⁴⁵⁶"]
)
def test_totp_unicode_digits_rejected(digits: str) -> None:
    # str.isdigit()/int() accept these; a verifier that used them could be confused.
    secret = new_totp_secret()
    with pytest.raises(InvalidCode):
        verify_totp(secret=secret, code=digits, now=NOW, last_used_step=0)


def test_totp_code_of_another_user_rejected() -> None:
    mine, theirs = new_totp_secret(), new_totp_secret()
    code = totp_code(secret=theirs, now=NOW)
    with pytest.raises(InvalidCode):
        verify_totp(secret=mine, code=code, now=NOW, last_used_step=0)


# --- recovery codes ---------------------------------------------------------------------------


def test_recovery_code_reuse_rejected() -> None:
    codes = generate_recovery_codes()
    unused = {f"rc_{i}": hash_recovery_code(c) for i, c in enumerate(codes)}
    used = verify_recovery_code(presented=codes[0], unused_hashes=unused)
    del unused[used.code_id]  # the caller sets used_at; the next call sees only unused codes
    with pytest.raises(InvalidCode):
        verify_recovery_code(presented=codes[0], unused_hashes=unused)
    # Retyping it differently does not revive it either.
    with pytest.raises(InvalidCode):
        verify_recovery_code(presented=codes[0].lower().replace("-", " "), unused_hashes=unused)


def test_recovery_code_of_another_user_rejected() -> None:
    mine, theirs = generate_recovery_codes(), generate_recovery_codes()
    unused = {f"rc_{i}": hash_recovery_code(c) for i, c in enumerate(mine)}
    with pytest.raises(InvalidCode):
        verify_recovery_code(presented=theirs[0], unused_hashes=unused)


def test_recovery_code_regenerated_set_invalidates_old_codes() -> None:
    old = generate_recovery_codes()
    new = generate_recovery_codes()
    unused = {f"rc_{i}": hash_recovery_code(c) for i, c in enumerate(new)}
    for code in old:
        with pytest.raises(InvalidCode):
            verify_recovery_code(presented=code, unused_hashes=unused)


# --- assurance --------------------------------------------------------------------------------


def test_two_knowledge_factors_never_aal2() -> None:
    result = compute_assurance([factor(Method.PASSWORD), factor(Method.SECURITY_QUESTION)])
    assert result.acr == "aal1"
    assert "mfa" not in result.amr
    assert not acr_satisfies(result.acr, "aal2")


def test_repeated_same_factor_never_aal2() -> None:
    result = compute_assurance([factor(Method.TOTP)] * 5)
    assert result.acr == "aal1"


def test_two_possession_factors_never_aal2() -> None:
    result = compute_assurance([factor(Method.SMS), factor(Method.EMAIL)])
    assert result.acr == "aal1"


def test_forged_webauthn_flags_on_totp_never_aal3() -> None:
    forged = VerifiedFactor(
        method=Method.TOTP,
        amr=("otp",),
        phishing_resistant=True,
        device_bound=True,
        user_verified=True,
    )
    result = compute_assurance([forged])
    assert result.acr == "aal1"
    assert "mfa" not in result.amr


def test_verifier_claimed_mfa_amr_not_trusted() -> None:
    result = compute_assurance([VerifiedFactor(method=Method.PASSWORD, amr=("pwd", "mfa"))])
    assert result.acr == "aal1"
    assert result.amr == ("pwd",)


def test_synced_passkey_never_aal3() -> None:
    synced = VerifiedFactor(
        method=Method.WEBAUTHN,
        amr=("swk", "user"),
        phishing_resistant=True,
        device_bound=False,
        user_verified=True,
    )
    assert compute_assurance([factor(Method.PASSWORD), synced]).acr == "aal2"


@pytest.mark.parametrize("acr", ["aal9", "AAL3", "aal3 ", "0", "mfa"])
def test_unknown_acr_fails_closed(acr: str) -> None:
    assert not acr_satisfies(acr, "aal1")
    assert not acr_satisfies("aal3", acr)


# --- passwords --------------------------------------------------------------------------------


def test_password_user_enumeration_by_timing_burns_a_real_verify() -> None:
    counting = CountingHasher(time_cost=1, memory_cost=8, parallelism=1)
    CountingHasher.verifies = 0
    burn_dummy_verify("guess", hasher=counting)  # unknown user
    stored = hash_password("the real one", hasher=counting)
    with pytest.raises(InvalidCredentials):
        verify_password(stored_hash=stored, presented="guess", hasher=counting)  # known user
    assert CountingHasher.verifies == 2


def test_password_unknown_user_takes_as_long_as_wrong_password() -> None:
    # Real parameters, so the cost difference would be visible if the dummy were skipped.
    owasp = make_hasher("owasp")
    stored = hash_password("the real one", hasher=owasp)
    burn_dummy_verify("warm-up", hasher=owasp)

    def timed(fn: Callable[[], None]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def wrong() -> None:
        with pytest.raises(InvalidCredentials):
            verify_password(stored_hash=stored, presented="guess", hasher=owasp)

    known = min(timed(wrong) for _ in range(3))
    unknown = min(timed(lambda: burn_dummy_verify("guess", hasher=owasp)) for _ in range(3))
    assert unknown > known / 3


def test_password_huge_input_rejected_without_hashing() -> None:
    counting = CountingHasher(time_cost=1, memory_cost=8, parallelism=1)
    CountingHasher.verifies = 0
    stored = hash_password("the real one", hasher=HASHER)
    with pytest.raises(InvalidCredentials):
        verify_password(stored_hash=stored, presented="x" * 5_000_000, hasher=counting)
    burn_dummy_verify("x" * 5_000_000, hasher=counting)
    assert CountingHasher.verifies == 0


def test_password_longer_than_256_rejected_at_enrolment() -> None:
    with pytest.raises(ValidationError) as info:
        check_new_password("correct horse " * 100, min_length=8)
    assert info.value.fields["reason"] == "too_long"


def test_weak_password_error_never_echoes_the_password() -> None:
    for password, context in [("Password1", ()), ("hunter2", ()), ("alice-in-bastion", ("alice",))]:
        with pytest.raises(ValidationError) as info:
            check_new_password(password, min_length=8, context_words=context)
        rendered = f"{info.value} {info.value.detail} {info.value.fields}"
        assert password not in rendered


def test_malformed_password_hash_gives_the_generic_failure() -> None:
    with pytest.raises(InvalidCredentials) as info:
        verify_password(stored_hash="$argon2id$broken", presented="anything", hasher=HASHER)
    assert info.value.detail == "The username or password is incorrect."


# --- sealing ----------------------------------------------------------------------------------


def test_sealed_totp_secret_swapped_between_factors_rejected() -> None:
    sealer = Sealer(os.urandom(32))
    victims_seed = sealer.seal(b"VICTIMSEED", context=b"totp:fct_victim")
    # An attacker with write access to the attacker's own row copies the victim's blob.
    with pytest.raises(SealError):
        sealer.unseal(victims_seed, context=b"totp:fct_attacker")


def test_sealed_secret_bit_flip_rejected() -> None:
    sealer = Sealer(os.urandom(32))
    blob = bytearray(sealer.seal(b"JBSWY3DPEHPK3PXP", context=b"totp:fct_1"))
    blob[20] ^= 0x80
    with pytest.raises(SealError):
        sealer.unseal(bytes(blob), context=b"totp:fct_1")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_world_readable_master_key_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    load_or_create_master_key(path)
    path.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IROTH)
    with pytest.raises(ConfigurationError):
        load_or_create_master_key(path)


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_master_key_symlink_planted_at_creation_not_followed(tmp_path: Path) -> None:
    # A dangling symlink at the key path must not make us write the key elsewhere.
    target = tmp_path / "elsewhere.key"
    path = tmp_path / "master.key"
    path.symlink_to(target)
    with pytest.raises(ConfigurationError):
        load_or_create_master_key(path)
    assert not target.exists()
