"""acr/amr computed from verified factors (DESIGN.md "Assurance levels", docs/webauthn.md)."""

from __future__ import annotations

import itertools
from pathlib import Path

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
RECOVERY = plain(Method.RECOVERY_CODE)
SMS = plain(Method.SMS)
SECURITY_QUESTION = plain(Method.SECURITY_QUESTION)
# WebAuthn credentials, built from their flags as the verifier reports them.
KEY_UV = VerifiedFactor.webauthn(backup_eligible=False, user_verified=True)
KEY = VerifiedFactor.webauthn(backup_eligible=False, user_verified=False)
PASSKEY_UV = VerifiedFactor.webauthn(backup_eligible=True, user_verified=True)
PASSKEY = VerifiedFactor.webauthn(backup_eligible=True, user_verified=False)

# factors -> (acr, amr, categories): the table docs/webauthn.md shows.
CASES = [
    ([PASSWORD], "aal1", ("pwd",), (K,)),
    ([PASSWORD, TOTP], "aal2", ("mfa", "otp", "pwd"), (K, P)),
    ([PASSWORD, RECOVERY], "aal2", ("mfa", "pwd", "recovery_code"), (K, P)),
    ([PASSWORD, SMS], "aal2", ("mfa", "pwd", "sms"), (K, P)),
    ([PASSWORD, SECURITY_QUESTION], "aal1", ("kba", "pwd"), (K,)),
    ([TOTP, SMS], "aal1", ("otp", "sms"), (P,)),
    # a device-bound security key (BE=0)
    ([KEY_UV], "aal3", ("hwk", "mfa", "pin", "user"), (K, P)),
    ([KEY], "aal1", ("hwk", "user"), (P,)),
    ([PASSWORD, KEY], "aal3", ("hwk", "mfa", "pwd", "user"), (K, P)),
    ([PASSWORD, KEY_UV], "aal3", ("hwk", "mfa", "pin", "pwd", "user"), (K, P)),
    ([TOTP, KEY], "aal1", ("hwk", "otp", "user"), (P,)),
    ([SECURITY_QUESTION, KEY], "aal1", ("hwk", "kba", "user"), (P,)),
    # a synced passkey (BE=1): aal2 at most, whatever accompanies it
    ([PASSKEY_UV], "aal2", ("mfa", "pin", "swk", "user"), (K, P)),
    ([PASSKEY], "aal1", ("swk", "user"), (P,)),
    ([PASSWORD, PASSKEY], "aal2", ("mfa", "pwd", "swk", "user"), (K, P)),
    ([PASSWORD, PASSKEY_UV], "aal2", ("mfa", "pin", "pwd", "swk", "user"), (K, P)),
    ([PASSWORD, TOTP, PASSKEY_UV], "aal2", ("mfa", "otp", "pin", "pwd", "swk", "user"), (K, P)),
]


@pytest.mark.parametrize(("factors", "acr", "amr", "categories"), CASES)
def test_assurance_table(
    factors: list[VerifiedFactor], acr: str, amr: tuple[str, ...], categories: tuple[Category, ...]
) -> None:
    assert compute_assurance(factors) == Assurance(acr=acr, amr=amr, categories=categories)


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


def test_recovery_code_sign_in_says_what_it_is() -> None:
    # Issue 13: a recovery-code sign-in used to report "otp", like a TOTP one.
    result = compute_assurance([PASSWORD, RECOVERY])
    assert "recovery_code" in result.amr
    assert "otp" not in result.amr


def test_amr_a_caller_passes_for_a_fixed_method_is_ignored() -> None:
    # The login flow stores {"method": "recovery_code", "amr": ["otp"]}: the catalog decides.
    told_otp = VerifiedFactor(method=Method.RECOVERY_CODE, amr=("otp",))
    assert compute_assurance([PASSWORD, told_otp]).amr == ("mfa", "pwd", "recovery_code")


def test_biometric_user_verification_counts_as_inherence() -> None:
    factor = VerifiedFactor(
        method=Method.WEBAUTHN, amr=("fpt",), phishing_resistant=True, user_verified=True
    )
    result = compute_assurance([factor])
    assert result.categories == (I, P)
    assert result.amr == ("fpt", "mfa", "swk", "user")  # no "pin": the verifier said how


def test_biometric_value_without_user_verification_adds_nothing() -> None:
    factor = VerifiedFactor(method=Method.WEBAUTHN, amr=("fpt",), phishing_resistant=True)
    assert compute_assurance([factor]) == Assurance(
        acr="aal1", amr=("swk", "user"), categories=(P,)
    )


def test_device_bound_uv_key_that_is_not_phishing_resistant_is_not_aal3() -> None:
    factor = VerifiedFactor(method=Method.WEBAUTHN, device_bound=True, user_verified=True)
    assert compute_assurance([factor]).acr == "aal2"


def test_amr_is_sorted_and_deduplicated() -> None:
    result = compute_assurance([TOTP, PASSWORD, plain(Method.PUSH), PASSWORD, TOTP])
    assert result.amr == ("mfa", "otp", "pwd", "swk")


def test_result_does_not_depend_on_order() -> None:
    factors = [PASSWORD, TOTP, PASSKEY_UV, SECURITY_QUESTION, KEY]
    results = {compute_assurance(list(p)) for p in itertools.permutations(factors)}
    assert len(results) == 1


@pytest.mark.parametrize("factors", [[], [SECURITY_QUESTION], [SECURITY_QUESTION] * 2])
def test_no_factor_is_no_assurance(factors: list[VerifiedFactor]) -> None:
    with pytest.raises(ValueError, match="at least one"):
        compute_assurance(factors)


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


# --- the table in docs/webauthn.md ------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "webauthn.md"
DOC_ROWS = [
    ("Password", [PASSWORD]),
    ("Authenticator app (TOTP)", [TOTP]),
    ("Recovery code", [RECOVERY]),
    ("Text message (SMS) code", [SMS]),
    ("Security question", [SECURITY_QUESTION]),
    ("Security key, device-bound (BE=0), user verified (UV=1)", [KEY_UV]),
    ("Security key, device-bound (BE=0), no UV", [KEY]),
    ("Passkey, synced (BE=1), user verified (UV=1)", [PASSKEY_UV]),
    ("Passkey, synced (BE=1), no UV", [PASSKEY]),
]


def doc_row(label: str, factors: list[VerifiedFactor]) -> str:
    paired = "—" if factors == [PASSWORD] else compute_assurance([PASSWORD, *factors]).acr
    if factors == [SECURITY_QUESTION]:  # not an authenticator: no category, no acr alone
        return f"| {label} | none | `kba` | none | {paired} |"
    alone = compute_assurance(factors)
    amr = ", ".join(f"`{value}`" for value in alone.amr if value != "mfa")
    categories = " + ".join(c.value for c in alone.categories)
    return f"| {label} | {categories} | {amr} | {alone.acr} | {paired} |"


def test_docs_show_the_assurance_each_factor_reaches() -> None:
    text = DOC.read_text()
    missing = [doc_row(label, f) for label, f in DOC_ROWS if doc_row(label, f) not in text]
    assert missing == []
