"""``GET /admin/risk/events`` (issue 15): recent medium and high decisions, with reasons,
tenant-scoped like the audit log."""

from __future__ import annotations

from fastapi.testclient import TestClient

from bastion.authz import Policy
from bastion.factors.password import hash_password
from bastion.identity.rules import save_policy
from bastion.identity.tenants import tenant_by_name
from tests.admin.helpers import mint, problem, runtime_of
from tests.support.app import Env
from tests.support.credentials import new_user
from tests.support.risk import PARIS, SYDNEY, TOKYO
from tests.support.server import ADMIN_PASSWORD


def client_at(env: Env, address: str) -> TestClient:
    return TestClient(env.client.app, client=(address, 50000), raise_server_exceptions=False)


def sign_in(env: Env, address: str, username: str) -> int:
    response = client_at(env, address).post(
        "/auth/login", json={"username": username, "password": ADMIN_PASSWORD}
    )
    return response.status_code


def flagged_world(env: Env) -> None:
    """acme's Ann signs in from Paris then Sydney (denied: impossible travel); someone
    tries an unknown username from Japan, a country the default tenant blocks."""
    rt = runtime_of(env)
    with rt.db.begin() as conn:
        now = env.clock.now()
        ann = new_user(
            conn,
            roles=["viewer"],
            tenant="acme",
            username="ann",
            password_hash=hash_password(ADMIN_PASSWORD, hasher=rt.hasher),
            now=now,
        )
        open_policy = {"mfa_required": False, "password_min_length": 15}
        save_policy(conn, ann.tenant_id, Policy.from_document(open_policy), now=now)
        default = tenant_by_name(conn, "default")
        assert default is not None
        blocked = {"risk": {"countries": {"blocked": ["JP"]}}}
        save_policy(conn, default.id, Policy.from_document(blocked), now=now)
    assert sign_in(env, PARIS, "ann") == 200
    env.clock.advance(600)
    assert sign_in(env, SYDNEY, "ann") == 401
    env.clock.advance(1)
    assert sign_in(env, TOKYO, "nobody-at-all") == 401


def test_installation_admins_see_every_flagged_decision_with_reasons(env: Env) -> None:
    flagged_world(env)
    admin = mint(env)
    listed = env.client.get("/admin/risk/events", headers=admin.auth)
    assert listed.status_code == 200, listed.text
    events = listed.json()["events"]
    assert [e["country"] for e in events] == ["JP", "AU"]  # newest first; Paris was low
    japan, sydney = events
    assert japan["tenant_id"] is None
    assert japan["level"] == "high"
    assert "country_blocked" in {r["reason"] for r in japan["reasons"]}
    assert sydney["decision"] == "deny"
    assert sydney["outcome"] == "denied"
    assert sydney["ip"] == SYDNEY
    assert "impossible_travel" in {r["reason"] for r in sydney["reasons"]}
    only_acme = env.client.get("/admin/risk/events?tenant=acme", headers=admin.auth).json()
    assert [e["country"] for e in only_acme["events"]] == ["AU"]
    one = env.client.get("/admin/risk/events?limit=1", headers=admin.auth).json()
    assert len(one["events"]) == 1
    older = env.client.get(
        "/admin/risk/events", headers=admin.auth, params={"after": one["next"]}
    ).json()
    assert [e["country"] for e in older["events"]] == ["AU"]


def test_a_tenant_admin_sees_only_their_tenants_decisions(env: Env) -> None:
    flagged_world(env)
    acme = mint(env, tenant="acme")
    events = env.client.get("/admin/risk/events", headers=acme.auth).json()["events"]
    assert [e["country"] for e in events] == ["AU"]
    problem(
        env.client.get("/admin/risk/events?tenant=default", headers=acme.auth),
        404,
        "tenant_not_found",
    )


def test_risk_events_are_for_admins_and_bad_input_is_a_4xx(env: Env) -> None:
    viewer = mint(env, role="viewer")
    assert env.client.get("/admin/risk/events", headers=viewer.auth).status_code == 403
    admin = mint(env)
    problem(
        env.client.get("/admin/risk/events?before=yesterday", headers=admin.auth),
        422,
        "validation_error",
    )
    assert env.client.get("/admin/risk/events?limit=0", headers=admin.auth).status_code == 422
    assert env.client.get("/admin/risk/events?limit=5000", headers=admin.auth).status_code == 422


def test_pages_of_decisions_taken_at_one_instant_skip_none(env: Env) -> None:
    flagged_world(env)
    for n in range(3):  # three more at the very same instant
        assert sign_in(env, TOKYO, f"nobody-{n}") == 401
    admin = mint(env)
    seen: list[str] = []
    after = None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = env.client.get("/admin/risk/events", headers=admin.auth, params=params).json()
        seen += [e["id"] for e in page["events"]]
        after = page["next"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == 5
