"""A browser's or a shared proxy's cache keeps responses that carry secrets (issue 11, 10).

Tokens, TOTP secrets, recovery codes, new API keys, enrolment links and exports must be
marked ``Cache-Control: no-store`` (and ``Pragma: no-cache``) so no cache keeps them, and
every response ``X-Content-Type-Options: nosniff``. One rule covers every response, so
the test enumerates every route of the app (failures included) and then checks each
response that carries a secret, taken through its real flow.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pyotp
from tests.admin.helpers import mint
from tests.support.app import Env

SECURITY_HEADERS = {
    "cache-control": "no-store",
    "pragma": "no-cache",
    "x-content-type-options": "nosniff",
}


def assert_not_cacheable(response: httpx.Response, what: str) -> None:
    found = {name: response.headers.get(name) for name in SECURITY_HEADERS}
    assert found == SECURITY_HEADERS, f"{what} ({response.status_code}): {found}"
    assert "strict-transport-security" not in response.headers  # plain HTTP: never HSTS


def every_route(env: Env) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document (the data plane's included)."""
    paths: dict[str, dict[str, Any]] = env.client.get("/openapi.json").json()["paths"]
    routes = [(method.upper(), path) for path, item in paths.items() for method in item]
    assert {("POST", "/auth/login"), ("POST", "/collections/{name}/export")} <= set(routes)
    assert len(routes) > 40  # the whole API, not a few routes
    return routes


def test_cache_keeps_no_response_of_any_route(env: Env) -> None:
    for method, path in every_route(env):
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        response = env.client.request(method, concrete, json=body)
        assert_not_cacheable(response, f"{method} {path}")
    for path in ("/setup", "/setup/enroll", "/docs", "/openapi.json", "/no/such/route"):
        assert_not_cacheable(env.client.get(path), path)


def test_cache_keeps_no_token_totp_secret_or_recovery_code(env: Env) -> None:
    signed_in = env.login()  # the bootstrap admin: a restricted token to enrol a factor
    assert_not_cacheable(signed_in, "login (restricted token)")
    auth = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    enrolment = env.client.post("/me/factors/totp", headers=auth)
    assert "secret" in enrolment.json()
    assert_not_cacheable(enrolment, "TOTP enrolment (secret)")
    secret = enrolment.json()["secret"]
    activated = env.client.post(
        f"/me/factors/totp/{enrolment.json()['factor_id']}/activate",
        headers=auth,
        json={"code": pyotp.TOTP(secret).at(env.clock.now())},
    )
    assert activated.status_code == 200
    assert_not_cacheable(activated, "TOTP activation")
    codes = env.client.post("/me/recovery-codes", headers=auth)
    assert codes.json()["codes"]
    assert_not_cacheable(codes, "recovery codes")
    env.next_step()
    tx = env.login().json()
    verified = env.client.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    )
    assert "refresh_token" in verified.json()
    assert_not_cacheable(verified, "login verify (tokens)")
    refreshed = env.client.post(
        "/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": verified.json()["refresh_token"]},
    )
    assert "access_token" in refreshed.json()
    assert_not_cacheable(refreshed, "refresh (tokens)")


def test_cache_keeps_no_api_key_enrolment_link_or_export(env: Env) -> None:
    admin = mint(env, role="admin", acr="aal3")
    account = env.client.post(
        "/admin/service-accounts", headers=admin.auth, json={"name": "ingest", "roles": ["admin"]}
    )
    assert account.status_code == 201, account.text
    key = env.client.post(
        f"/admin/service-accounts/{account.json()['id']}/keys", headers=admin.auth
    )
    assert key.json()["key"].startswith("bst_sk_")
    assert_not_cacheable(key, "new API key")
    user = env.client.post(
        "/admin/users", headers=admin.auth, json={"username": "newcomer", "roles": ["viewer"]}
    )
    assert "/setup/enroll#" in user.json()["enrollment"]["url"]
    assert_not_cacheable(user, "enrolment link")
    audit_export = env.client.get("/admin/audit/export", headers=admin.auth)
    assert audit_export.status_code == 200
    assert_not_cacheable(audit_export, "audit export")
    created = env.client.put(
        "/collections/kept", headers=admin.auth, json={"vectors": {"size": 2, "distance": "Dot"}}
    )
    assert created.status_code == 200, created.text
    upserted = env.client.put(
        "/collections/kept/points?wait=true",
        headers=admin.auth,
        json={"points": [{"id": 1, "vector": [1, 0], "payload": {"secret": "data"}}]},
    )
    assert upserted.status_code == 200, upserted.text
    exported = env.client.post("/collections/kept/export", headers=admin.auth)
    assert b'"secret"' in exported.content
    assert_not_cacheable(exported, "points export")
    found = env.client.post(
        "/collections/kept/points/query", headers=admin.auth, json={"query": [1, 0]}
    )
    assert found.status_code == 200
    assert_not_cacheable(found, "search results")
