"""Malformed admin input is a clear 4xx problem+json, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.admin.helpers import mint, problem
from tests.support.app import Env

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "raw"),
    [
        ("POST", "/admin/users", b"{not json"),
        ("POST", "/admin/users", b"[]"),
        ("POST", "/admin/users", b""),
        ("POST", "/admin/tenants", b'{"name": '),
        ("POST", "/admin/service-accounts", b"\xff\xfe"),
        ("POST", "/admin/roles", b"null"),
        ("PATCH", "/admin/users/usr_x", b"{]"),
        ("PUT", "/admin/policy", b"{"),
    ],
)
def test_malformed_json(env: Env, method: str, path: str, raw: bytes) -> None:
    admin = mint(env)
    response = env.client.request(method, path, headers={**admin.auth, **JSON}, content=raw)
    problem(response, 422, "validation_error")


BAD_USERS: list[dict[str, Any]] = [
    {"username": "x", "roles": "admin"},  # roles not a list
    {"username": 5, "roles": []},
    {"username": "x"},  # roles missing
    {"roles": ["viewer"]},  # username missing
    {"username": "x", "roles": ["viewer"], "is_admin": True},  # unknown field
    {"username": "x", "roles": ["viewer"], "password": 12345678},
    {"username": "x", "roles": ["overlord"]},  # unknown role
    {"username": "x", "roles": [None]},
    {"username": "has space", "roles": []},
    {"username": "x" * 500, "roles": []},
    {"username": "bst_sk_looks_like_a_key", "roles": []},
    {"username": "x", "roles": [], "collections": []},
    {"username": "x", "roles": [], "collections": ["bad name!"]},
    {"username": "x", "roles": [], "collections": "docs"},
    {"username": "x", "roles": [], "tenant": ""},
]


@pytest.mark.parametrize("body", BAD_USERS)
def test_bad_user_bodies(env: Env, body: dict[str, Any]) -> None:
    admin = mint(env)
    problem(env.client.post("/admin/users", headers=admin.auth, json=body), 422, "validation_error")


def test_unknown_roles_are_named(env: Env) -> None:
    admin = mint(env)
    response = env.client.post(
        "/admin/users", headers=admin.auth, json={"username": "x", "roles": ["viewer", "overlord"]}
    )
    assert "overlord" in problem(response, 422, "validation_error")["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "deleted"},
        {"status": "banned"},
        {"status": None},
        {"roles": None},
        {"roles": "admin"},
        {"roles": ["ghost"]},
        {"status": "active", "nickname": "x"},
        {"collections": []},
    ],
)
def test_bad_patches(env: Env, body: dict[str, Any]) -> None:
    admin = mint(env)
    user = mint(env, role="viewer")
    response = env.client.patch(f"/admin/users/{user.user_id}", headers=admin.auth, json=body)
    problem(response, 422, "validation_error")
    assert env.client.get("/me", headers=user.auth).status_code == 200  # untouched


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/admin/service-accounts", {"name": "", "roles": []}),
        ("/admin/service-accounts", {"name": "ci", "roles": ["nope"]}),
        ("/admin/service-accounts", {"name": "ci"}),
        ("/admin/service-accounts", {"name": "ci", "roles": [], "secret": "x"}),
        ("/admin/service-accounts", {"name": "bst_sk_x", "roles": []}),
        ("/admin/tenants", {"name": 7}),
        ("/admin/tenants", {"name": "UPPER"}),
        ("/admin/tenants", {"name": "ok", "owner": "me"}),
        ("/admin/tenants", {}),
    ],
)
def test_bad_bodies_elsewhere(env: Env, path: str, body: dict[str, Any]) -> None:
    admin = mint(env)
    problem(env.client.post(path, headers=admin.auth, json=body), 422, "validation_error")


def test_unknown_ids_are_not_found(env: Env) -> None:
    admin = mint(env)
    for method, path, code in (
        ("GET", "/admin/users/usr_0", "user_not_found"),
        ("PATCH", "/admin/users/usr_0", "user_not_found"),
        ("DELETE", "/admin/users/usr_0", "user_not_found"),
        ("POST", "/admin/users/usr_0/reset-factors", "user_not_found"),
        ("GET", "/admin/service-accounts/sa_0", "service_account_not_found"),
        ("POST", "/admin/service-accounts/sa_0/keys", "service_account_not_found"),
        ("GET", "/admin/service-accounts/sa_0/keys", "service_account_not_found"),
        ("DELETE", "/admin/service-accounts/sa_0/keys/key_0", "service_account_not_found"),
        ("DELETE", "/admin/service-accounts/sa_0", "service_account_not_found"),
        ("DELETE", "/admin/roles/ghost", "role_not_found"),
        ("GET", "/admin/policy?tenant=ghost", "tenant_not_found"),
        ("GET", "/admin/nothing-here", "not_found"),
    ):
        kwargs: dict[str, Any] = {"json": {"status": "active"}} if method == "PATCH" else {}
        response = env.client.request(method, path, headers=admin.auth, **kwargs)
        problem(response, 404, code)


def test_wrong_method_and_oversized_body(env: Env) -> None:
    admin = mint(env)
    response = env.client.put("/admin/tenants", headers=admin.auth, json={"name": "x"})
    assert response.status_code == 405
    huge = {"username": "x", "roles": [], "password": "p" * 10_000_000}
    response = env.client.post("/admin/users", headers=admin.auth, json=huge)
    assert response.status_code in (413, 422)
