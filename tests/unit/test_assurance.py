"""acr/amr computed from verified factors (DESIGN.md "Assurance levels")."""

from __future__ import annotations

import itertools

import pytest

from bastion.authn.assurance import (
    ACR_VALUES,
    Assurance,
    VerifiedFactor,
    acr_rank,
    acr_satisfies,
    compute_assurance,
)
from bastion.factors.catalog import CATALOG, Category, Method

K, P, I = Category.KNOWLEDGE, Category.POSSESSION, Category.INHERENCE  # noqa: E741


def plain(method: Method) -> VerifiedFactor:
    return VerifiedFactor(method=method, amr=CATALOG[method].amr)


PASSWORD = plain(Method.PASSWORD)
TOTP = plain(Method.TOTP)
SECURITY_QUESTION = plain(Method.SECURITY_QUESTION)
SECURITY_KEY_UV = VerifiedFactor(
    method=Method.WEBAUTHN,
    amr=("hwk", "pin", "user"),
    phishing_resistant=True,
    device_bound=True,
    user_verified=True,
)
SYNCED_PASSKEY_UV = VerifiedFactor(
    method=Method.WEBAUTHN,
    amr=("swk", "user"),
    phishing_resistant=True,
    device_bound=False,
    user_verified=True,
)
SECURITY_KEY_NO_UV = VerifiedFactor(
    method=Method.WEBAUTHN, amr=("hwk",), phishing_resistant=True, device_bound=True
)


def test_password_alone_is_aal1() -> None:
    assert compute_assurance([PASSWORD]) == Assurance(acr="aal1", amr=("pwd",), categories=(K,))


def test_password_and_totp_is_aal2_with_mfa() -> None:
    assert compute_assurance([PASSWORD, TOTP]) == Assurance(
        acr="aal2", amr=("mfa", "otp", "pwd"), categories=(K, P)
    )


def test_password_and_security_question_stay_aal1() -> None:
    result = compute_assurance([PASSWORD, SECURITY_QUESTION])
    assert result.acr == "aal1"
    assert result.amr == ("kba", "pwd")
    assert "mfa" not in result.amr


def test_two_possession_factors_stay_aal1() -> None:
    result = compute_assurance([TOTP, plain(Method.SMS)])
    assert result.acr == "aal1"
    assert result.categories == (P,)


@pytest.mark.parametrize(
    "second",
    [
        Method.TOTP,
        Method.RECOVERY_CODE,
        Method.PUSH,
        Method.SMS,
        Method.VOICE,
        Method.EMAIL,
        Method.REMEMBERED_DEVICE,
    ],
)
def test_password_plus_any_possession_method_is_aal2(second: Method) -> None:
    result = compute_assurance([PASSWORD, plain(second)])
    assert result.acr == "aal2"
    assert "mfa" in result.amr


def test_device_bound_security_key_with_uv_is_aal3() -> None:
    result = compute_assurance([SECURITY_KEY_UV])
    assert result.acr == "aal3"
    assert {"hwk", "mfa", "user"} <= set(result.amr)
    assert result.categories == (K, P)


def test_aal3_survives_additional_factors() -> None:
    assert compute_assurance([PASSWORD, SECURITY_KEY_UV]).acr == "aal3"


def test_synced_passkey_with_uv_is_aal2() -> None:
    result = compute_assurance([SYNCED_PASSKEY_UV])
    assert result.acr == "aal2"
    assert result.amr == ("mfa", "swk", "user")


def test_biometric_user_verification_counts_as_inherence() -> None:
    factor = VerifiedFactor(
        method=Method.WEBAUTHN, amr=("fpt", "swk"), phishing_resistant=True, user_verified=True
    )
    assert compute_assurance([factor]).categories == (I, P)


def test_security_key_without_uv_alone_is_aal1() -> None:
    result = compute_assurance([SECURITY_KEY_NO_UV])
    assert result.acr == "aal1"
    assert "mfa" not in result.amr


def test_security_key_without_uv_plus_password_is_aal2() -> None:
    assert compute_assurance([PASSWORD, SECURITY_KEY_NO_UV]).acr == "aal2"


def test_device_bound_uv_key_that_is_not_phishing_resistant_is_not_aal3() -> None:
    factor = VerifiedFactor(
        method=Method.WEBAUTHN, amr=("hwk", "user"), device_bound=True, user_verified=True
    )
    assert compute_assurance([factor]).acr == "aal2"


def test_amr_is_sorted_and_deduplicated() -> None:
    result = compute_assurance([TOTP, PASSWORD, plain(Method.RECOVERY_CODE), PASSWORD])
    assert result.amr == ("mfa", "otp", "pwd")


def test_result_does_not_depend_on_order() -> None:
    factors = [PASSWORD, TOTP, SYNCED_PASSKEY_UV, SECURITY_QUESTION]
    results = {compute_assurance(list(p)) for p in itertools.permutations(factors)}
    assert len(results) == 1


def test_no_factor_is_no_assurance() -> None:
    with pytest.raises(ValueError, match="at least one"):
        compute_assurance([])


def test_method_given_as_plain_string_is_looked_up() -> None:
    factor = VerifiedFactor(method="totp", amr=("otp",))  # type: ignore[arg-type]
    assert compute_assurance([PASSWORD, factor]).acr == "aal2"


# --- acr comparison ---------------------------------------------------------------------------


def test_acr_rank_orders_levels() -> None:
    assert [acr_rank(a) for a in ACR_VALUES] == [1, 2, 3]


@pytest.mark.parametrize("unknown", ["", "aal0", "aal4", "AAL3", "urn:mace:incommon:iap:silver"])
def test_unknown_acr_ranks_below_aal1(unknown: str) -> None:
    assert acr_rank(unknown) == 0


@pytest.mark.parametrize(
    ("have", "need", "ok"),
    [
        ("aal1", "aal1", True),
        ("aal2", "aal1", True),
        ("aal3", "aal2", True),
        ("aal3", "aal3", True),
        ("aal1", "aal2", False),
        ("aal2", "aal3", False),
        ("bogus", "aal1", False),
        ("aal3", "bogus", False),
        ("", "", False),
    ],
)
def test_acr_satisfies(have: str, need: str, ok: bool) -> None:
    assert acr_satisfies(have, need) is ok
