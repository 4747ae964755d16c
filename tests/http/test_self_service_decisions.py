"""``/me`` and step-up through the real app: every refusal is ``authz.decide``'s, answered
with its code and recorded in the audit log (issue 12)."""

from __future__ import annotations

from typing import Any

from bastion.audit import StoredEvent, query
from tests.admin.helpers import events, mint, problem, runtime_of
from tests.support.app import Env


def stored(env: Env, action: str) -> list[StoredEvent]:
    with runtime_of(env).db.read() as conn:
        return list(query(conn, tenant_id=None, action=action, limit=1000).events)


def api_key(env: Env) -> str:
    admin = mint(env)
    account = env.client.post(
        "/admin/service-accounts", headers=admin.auth, json={"name": "etl", "roles": ["viewer"]}
    ).json()
    key: dict[str, Any] = env.client.post(
        f"/admin/service-accounts/{account['id']}/keys", headers=admin.auth
    ).json()
    return str(key["key"])


def test_a_service_account_has_no_factors_nor_step_up(env: Env) -> None:
    headers = {"api-key": api_key(env)}
    assert env.client.get("/me", headers=headers).status_code == 200
    body = problem(env.client.get("/me/factors", headers=headers), 403, "forbidden")
    assert body["reason"] == "not_self_service"
    problem(env.client.post("/me/factors/totp", headers=headers), 403, "forbidden")
    problem(env.client.post("/auth/step-up", headers=headers), 403, "step_up_unavailable")
    reasons = {event.reason for event in stored(env, "authz.denied")}
    assert {"not_self_service", "step_up_unavailable"} <= reasons


def test_step_up_without_a_factor_is_refused_and_recorded(env: Env) -> None:
    user = mint(env, role="viewer", acr="aal2")
    problem(env.client.post("/auth/step-up", headers=user.auth), 403, "no_suitable_factor")
    refused = [e for e in stored(env, "authz.denied") if e.actor == user.user_id]
    assert [e.reason for e in refused] == ["no_suitable_factor"]
    assert refused[0].details["permission"] == "me.step_up"


def test_adding_a_second_factor_with_one_factor_asks_for_aal2(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    admin = mint(env, acr="aal3")
    document = env.client.get("/admin/policy", headers=admin.auth).json()
    document.update(mfa_required=False, password_min_length=15)
    assert env.client.put("/admin/policy", headers=admin.auth, json=document).status_code == 200
    # The policy lets a password alone sign in (aal1); the account has a TOTP factor.
    tokens = env.login().json()
    assert (tokens["status"], tokens["acr"]) == ("authenticated", "aal1")
    response = env.client.post(
        "/me/factors/totp", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    problem(response, 401, "insufficient_user_authentication")
    assert 'acr_values="aal2"' in response.headers["www-authenticate"]
    challenged = events(env, admin, action="step_up.challenged")
    assert any(e["details"]["permission"] == "me.factors.enroll" for e in challenged)
    assert secret  # the factor the account already had
