"""Opaque secrets: prefixes, entropy, hashing, parsing and hints."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest

from bastion.errors import InvalidToken
from bastion.tokens.opaque import PREFIXES, hash_secret, hint, new_secret, parse_secret

KINDS = ["api_key", "refresh", "setup", "enroll"]


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        ("api_key", "bst_sk_"),
        ("refresh", "bst_rt_"),
        ("setup", "bst_setup_"),
        ("enroll", "bst_enroll_"),
    ],
)
def test_new_secret_has_its_type_prefix_and_256_bits(kind: Any, prefix: str) -> None:
    secret = new_secret(kind)
    assert secret.value.startswith(prefix)
    body = secret.value[len(prefix) :]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", body)
    assert len(base64.urlsafe_b64decode(body + "=")) == 32


@pytest.mark.parametrize("kind", KINDS)
def test_hash_is_sha256_hex_of_the_whole_value(kind: Any) -> None:
    secret = new_secret(kind)
    assert secret.hash == hashlib.sha256(secret.value.encode()).hexdigest()
    assert secret.hash == hash_secret(secret.value)
    assert len(secret.hash) == 64


@pytest.mark.parametrize("kind", KINDS)
def test_parse_returns_the_lookup_hash(kind: Any) -> None:
    secret = new_secret(kind)
    assert parse_secret(secret.value, kind) == secret.hash


def test_secrets_are_unique() -> None:
    values = {new_secret("api_key").value for _ in range(1000)}
    assert len(values) == 1000


def test_value_is_not_in_repr() -> None:
    secret = new_secret("refresh")
    assert secret.value not in repr(secret)
    assert secret.hash in repr(secret)


def test_prefixes_are_distinct_and_recognisable() -> None:
    assert all(prefix.startswith("bst_") and prefix.endswith("_") for prefix in PREFIXES.values())
    assert len(set(PREFIXES.values())) == len(PREFIXES)


@pytest.mark.parametrize(
    "kind", [("api_key", "refresh"), ("refresh", "api_key"), ("setup", "enroll")]
)
def test_secret_of_another_kind_is_malformed(kind: tuple[Any, Any]) -> None:
    minted, expected = kind
    with pytest.raises(InvalidToken, match="malformed"):
        parse_secret(new_secret(minted).value, expected)


def _malformed_variants() -> list[Any]:
    good = new_secret("api_key").value
    return [
        "",
        "bst_sk_",
        good[:-1],  # too short
        good + "A",  # too long
        good[:-1] + "+",  # not base64url
        good[:-1] + "=",
        good[:-1] + "é",
        " " + good[1:],
        good[:-1] + "\n",
        "BST_SK_" + good[7:],
        "xyz_sk_" + good[7:],
        None,
        42,
        good.encode(),
    ]


@pytest.mark.parametrize("value", _malformed_variants())
def test_malformed_secret_is_refused(value: Any) -> None:
    with pytest.raises(InvalidToken, match="malformed") as caught:
        parse_secret(value, "api_key")
    assert caught.value.code == "invalid_token"


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="kind"):
        new_secret("password")  # type: ignore[arg-type]


def test_hint_is_the_last_four_characters() -> None:
    secret = new_secret("api_key")
    assert hint(secret.value) == secret.value[-4:]
    assert len(hint(secret.value)) == 4
