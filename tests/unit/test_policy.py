"""The assurance policy document: secure defaults, strict validation, docs that cannot drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bastion.authz import (
    DEFAULT_POLICY,
    DOCUMENT_KEYS,
    PERMISSIONS,
    Policy,
    Requirement,
    render_permissions_markdown,
)
from bastion.errors import ValidationError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"


# Issue 4, "secure defaults", restated independently of the registry.
@pytest.mark.parametrize(
    ("action", "acr", "max_age"),
    [
        ("points.write", "aal2", None),
        ("collections.create", "aal2", 900),
        ("collections.delete", "aal2", 900),
        ("indexes.write", "aal2", 900),
        ("users.manage", "aal2", 300),
        ("roles.manage", "aal2", 300),
        ("service_accounts.manage", "aal2", 300),
        ("keys.manage", "aal2", 300),
        ("policy.manage", "aal2", 300),
        ("points.export", "aal3", 300),
        ("factors.reset", "aal3", 300),
        ("audit.export", "aal3", 300),
        ("collections.read", "aal1", None),
        ("points.read", "aal1", None),
        ("points.search", "aal1", None),
    ],
)
def test_secure_defaults(action: str, acr: str, max_age: int | None) -> None:
    assert DEFAULT_POLICY.requirement(action) == Requirement(acr, max_age)


def test_defaults_require_mfa() -> None:
    assert DEFAULT_POLICY.mfa_required is True
    assert DEFAULT_POLICY.password_min_length == 8
    assert DEFAULT_POLICY.admin_requires_aal3 is False


def test_admin_switch_raises_every_administrative_action_to_aal3() -> None:
    strict = Policy.from_document({"admin_requires_aal3": True})
    for name, item in PERMISSIONS.items():
        if item.kind == "admin" or name in {
            "collections.create",
            "collections.delete",
            "indexes.write",
        }:
            assert strict.requirement(name).acr == "aal3", name
            assert strict.requirement(name).max_age == DEFAULT_POLICY.requirement(name).max_age
        else:
            assert strict.requirement(name) == DEFAULT_POLICY.requirement(name), name
    # The stored document keeps the base values; the switch applies on top.
    assert strict.to_document()["actions"]["users.manage"] == {"acr": "aal2", "max_age": 300}
    assert strict.effective_document()["users.manage"] == {"acr": "aal3", "max_age": 300}


def test_document_round_trips() -> None:
    document = DEFAULT_POLICY.to_document()
    assert set(document) == set(DOCUMENT_KEYS)
    assert set(document["actions"]) == set(PERMISSIONS)
    assert json.loads(json.dumps(document)) == document
    assert Policy.from_document(document) == DEFAULT_POLICY
    assert Policy.from_document({}) == DEFAULT_POLICY


def test_partial_document_overrides_only_what_it_names() -> None:
    policy = Policy.from_document(
        {"actions": {"points.write": {"acr": "aal3", "max_age": 60}}, "password_min_length": 12}
    )
    assert policy.requirement("points.write") == Requirement("aal3", 60)
    assert policy.requirement("users.manage") == Requirement("aal2", 300)
    assert policy.password_min_length == 12


def test_unknown_keys_are_listed() -> None:
    with pytest.raises(ValidationError) as exc:
        Policy.from_document({"mfa_required": True, "allow_everything": True, "zzz": 1})
    assert "allow_everything" in exc.value.detail
    assert "zzz" in exc.value.detail


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"mfa_required": "yes"}, "mfa_required"),
        ({"admin_requires_aal3": 1}, "admin_requires_aal3"),
        ({"password_min_length": 7}, "between 8 and 64"),
        ({"password_min_length": 65}, "between 8 and 64"),
        ({"password_min_length": True}, "integer"),
        ({"mfa_required": False, "password_min_length": 8}, "between 15 and 64"),
        ({"actions": []}, "actions must be an object"),
        ({"actions": {"points.teleport": {"acr": "aal1"}}}, "points.teleport"),
        ({"actions": {"points.write": "aal1"}}, "actions.points.write"),
        ({"actions": {"points.write": {"acr": "aal4"}}}, "acr must be one of"),
        ({"actions": {"points.write": {"acr": "aal2", "ttl": 3}}}, "ttl"),
        ({"actions": {"points.write": {"acr": "aal2", "max_age": 0}}}, "max_age"),
        ({"actions": {"points.write": {"acr": "aal2", "max_age": "300"}}}, "max_age"),
        ({"actions": {"points.write": {"acr": "aal2", "max_age": 10**6}}}, "max_age"),
        ({"actions": {"users.manage": {"acr": "aal1"}}}, "administrative"),
        ({"actions": {"collections.create": {"acr": "aal1"}}}, "administrative"),
        ({"service_account_actions": "points.read"}, "list"),
        ({"service_account_actions": ["points.nope"]}, "points.nope"),
        ({"service_account_actions": ["users.manage"]}, "users.manage"),
        ({"service_account_actions": ["collections.create"]}, "collections.create"),
        ({"service_account_actions": ["me.factors.enroll"]}, "me.factors.enroll"),
    ],
)
def test_invalid_documents_rejected(document: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Policy.from_document(document)


def test_password_alone_needs_fifteen_characters() -> None:
    policy = Policy.from_document({"mfa_required": False})
    assert (policy.mfa_required, policy.password_min_length) == (False, 15)


def test_reads_may_be_raised_and_writes_lowered() -> None:
    policy = Policy.from_document(
        {
            "actions": {
                "points.search": {"acr": "aal2", "max_age": None},
                "points.write": {"acr": "aal1", "max_age": None},
            }
        }
    )
    assert policy.requirement("points.search").acr == "aal2"
    assert policy.requirement("points.write").acr == "aal1"


def test_requirement_of_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(LookupError):
        DEFAULT_POLICY.requirement("points.teleport")


def test_docs_list_every_permission_and_policy_key() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name in PERMISSIONS:
        assert f"`{name}`" in text, f"docs/permissions.md misses {name}"
    for key in DOCUMENT_KEYS:
        assert f"`{key}`" in text, f"docs/permissions.md misses policy key {key}"


def test_docs_are_the_generated_table() -> None:
    assert DOCS.read_text(encoding="utf-8").strip() == render_permissions_markdown().strip(), (
        "regenerate docs/permissions.md (see the comment at its top)"
    )


@pytest.mark.parametrize("max_age", [None, 901])
def test_a_change_of_sign_in_always_needs_a_recent_proof(max_age: int | None) -> None:
    for action in ("me.factors.enroll", "me.factors.remove", "me.password.change"):
        with pytest.raises(ValidationError, match="recent proof"):
            Policy.from_document({"actions": {action: {"acr": "aal2", "max_age": max_age}}})
    relaxed = {"me.factors.enroll": {"acr": "aal2", "max_age": 900}}
    assert (
        Policy.from_document({"actions": relaxed}).requirement("me.factors.enroll").max_age == 900
    )
