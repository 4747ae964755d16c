"""The method catalog is data: every method is registered with coherent properties."""

from __future__ import annotations

import dataclasses

import pytest

from bastion.factors.catalog import (
    CATALOG,
    PRIVATE_AMR,
    Category,
    Method,
    MethodProperties,
    Rating,
)

# RFC 8176 §2 registered Authentication Method Reference values.
RFC8176_AMR = {
    "face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop", "pwd",
    "rba", "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia",
}  # fmt: skip


def test_every_method_is_in_the_catalog() -> None:
    assert set(CATALOG) == set(Method)
    assert {m.value for m in Method} == {
        "password", "totp", "recovery_code", "webauthn", "push", "sms", "voice", "email",
        "security_question", "remembered_device",
    }  # fmt: skip


@pytest.mark.parametrize("method", list(Method))
def test_each_entry_is_well_formed(method: Method) -> None:
    props = CATALOG[method]
    assert isinstance(props, MethodProperties)
    assert isinstance(props.category, Category)
    assert isinstance(props.rating, Rating)
    assert props.amr
    assert set(props.amr) <= RFC8176_AMR | PRIVATE_AMR
    assert "mfa" not in props.amr  # earned by combining factors, never a method's own
    assert props.label


def test_catalog_is_read_only() -> None:
    with pytest.raises(TypeError):
        CATALOG[Method.SMS] = CATALOG[Method.WEBAUTHN]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        CATALOG[Method.SMS].rating = Rating.STRONG  # type: ignore[misc]


@pytest.mark.parametrize(
    ("method", "category", "amr"),
    [
        (Method.PASSWORD, Category.KNOWLEDGE, ("pwd",)),
        (Method.TOTP, Category.POSSESSION, ("otp",)),
        (Method.RECOVERY_CODE, Category.POSSESSION, ("recovery_code",)),
        (Method.WEBAUTHN, Category.POSSESSION, ("user",)),
        (Method.PUSH, Category.POSSESSION, ("swk",)),
        (Method.SMS, Category.POSSESSION, ("sms",)),
        (Method.VOICE, Category.POSSESSION, ("tel",)),
        (Method.EMAIL, Category.POSSESSION, ("otp",)),
        (Method.SECURITY_QUESTION, Category.KNOWLEDGE, ("kba",)),
        (Method.REMEMBERED_DEVICE, Category.POSSESSION, ("swk",)),
    ],
)
def test_category_and_amr(method: Method, category: Category, amr: tuple[str, ...]) -> None:
    assert CATALOG[method].category is category
    assert CATALOG[method].amr == amr


def test_only_webauthn_is_phishing_resistant() -> None:
    assert {m for m, p in CATALOG.items() if p.phishing_resistant} == {Method.WEBAUTHN}


def test_phone_network_methods_are_sim_swap_exposed() -> None:
    assert {m for m, p in CATALOG.items() if p.sim_swap_exposed} == {Method.SMS, Method.VOICE}


def test_out_of_band_and_kba_methods_are_rated_weak() -> None:
    weak = {m for m, p in CATALOG.items() if p.rating == "weak"}
    assert weak == {Method.SMS, Method.VOICE, Method.EMAIL, Method.SECURITY_QUESTION}
    assert CATALOG[Method.WEBAUTHN].rating == "strong"


def test_public_key_methods_keep_no_server_side_secret() -> None:
    assert {m for m, p in CATALOG.items() if not p.server_side_secret} == {
        Method.WEBAUTHN,
        Method.PUSH,
    }


def test_methods_needing_a_network_do_not_work_offline() -> None:
    assert {m for m, p in CATALOG.items() if not p.works_offline} == {
        Method.PUSH,
        Method.SMS,
        Method.VOICE,
        Method.EMAIL,
    }


def test_only_webauthn_can_verify_the_user_itself() -> None:
    assert {m for m, p in CATALOG.items() if p.multi_factor_capable} == {Method.WEBAUTHN}


def test_enums_are_strings_for_storage_and_json() -> None:
    assert Method("totp") is Method.TOTP
    assert str(Category.KNOWLEDGE) == "knowledge"
    assert isinstance(Rating.WEAK, str)
    assert f"{Rating.WEAK}" == "weak"


def test_private_amr_values_cannot_collide_with_registered_ones() -> None:
    # RFC 8176 has no value for a recovery code; Bastion's own are unregistered and
    # recognisable (an underscore no registered value has).
    assert not PRIVATE_AMR & RFC8176_AMR
    assert all("_" in value for value in PRIVATE_AMR)
    assert {m for m in Method if set(CATALOG[m].amr) & PRIVATE_AMR} == {Method.RECOVERY_CODE}


def test_recovery_code_does_not_pass_for_an_otp_generator() -> None:
    assert "otp" not in CATALOG[Method.RECOVERY_CODE].amr
    assert CATALOG[Method.RECOVERY_CODE].category is Category.POSSESSION


def test_only_knowledge_based_questions_do_not_count_as_a_factor() -> None:
    assert {m for m, p in CATALOG.items() if not p.counts_as_factor} == {Method.SECURITY_QUESTION}
