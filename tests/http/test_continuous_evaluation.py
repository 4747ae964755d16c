"""Continuous evaluation (zero trust, issue 15): every authenticated request is re-scored.

The real app in-process with a clock the test moves, each request "from" the address the
test names (real public addresses the bundled GeoLite2 data places; tests/support/risk.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.authz import Policy
from bastion.factors.password import hash_password
from bastion.identity.rules import save_policy
from bastion.identity.users import user_by_id
from bastion.risk.schema import risk_events
from bastion.risk.store import save_usage
from tests.admin.helpers import events, mint, runtime_of
from tests.support.app import Env
from tests.support.credentials import new_session, new_user
from tests.support.risk import BERLIN, PARIS, SYDNEY
from tests.support.server import ADMIN_PASSWORD

OPEN = {"mfa_required": False, "password_min_length": 15}


def client_at(env: Env, address: str) -> TestClient:
    return TestClient(env.client.app, client=(address, 50000), raise_server_exceptions=False)


def tenant_with(env: Env, name: str, document: dict[str, Any]) -> str:
    """A tenant ``name`` with the policy ``document``; a user of it with a password."""
    rt = runtime_of(env)
    with rt.db.begin() as conn:
        now = env.clock.now()
        user = new_user(
            conn,
            roles=["developer"],
            tenant=name,
            username=f"{name}-user",
            password_hash=hash_password(ADMIN_PASSWORD, hasher=rt.hasher),
            now=now,
        )
        save_policy(conn, user.tenant_id, Policy.from_document(document), now=now)
    return user.username


def signed_in_at(env: Env, address: str, username: str) -> dict[str, str]:
    """A password sign-in from ``address`` (the tenant lets a password alone through)."""
    body = client_at(env, address).post(
        "/auth/login", json={"username": username, "password": ADMIN_PASSWORD}
    )
    assert body.status_code == 200, body.text
    assert body.json()["status"] == "authenticated", body.json()
    return {"Authorization": f"Bearer {body.json()['access_token']}"}


def challenge_of(response: Any) -> str:
    assert response.status_code == 401, response.text
    header: str = response.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in header
    return header


def test_a_token_used_from_a_far_away_address_is_challenged(env: Env) -> None:
    name = tenant_with(env, "travel", OPEN)
    auth = signed_in_at(env, PARIS, name)
    assert client_at(env, PARIS).get("/collections", headers=auth).status_code == 200
    env.clock.advance(60)
    stolen = client_at(env, SYDNEY).get("/collections", headers=auth)
    header = challenge_of(stolen)
    assert 'acr_values="aal3"' in header  # impossible travel: a phishing-resistant factor
    # asked again on every request from there, recorded once
    challenge_of(client_at(env, SYDNEY).get("/collections", headers=auth))
    admin = mint(env)
    (event,) = events(env, admin, action="session.risk_challenged")
    reasons = {r["reason"] for r in event["details"]["risk_reasons"]}
    assert "impossible_travel" in reasons
    assert event["details"]["ip"] == SYDNEY
    flagged = env.client.get("/admin/risk/events", headers=admin.auth)
    if flagged.status_code == 200:  # the admin view (step 4)
        assert any(e["kind"] == "session" for e in flagged.json()["events"])


def test_a_token_used_from_another_country_is_challenged_for_a_second_factor(env: Env) -> None:
    name = tenant_with(env, "neighbours", OPEN)
    auth = signed_in_at(env, PARIS, name)
    header = challenge_of(client_at(env, BERLIN).get("/collections", headers=auth))
    assert 'acr_values="aal2"' in header
    admin = mint(env)
    (event,) = events(env, admin, action="session.risk_challenged")
    assert "session_country_changed" in {r["reason"] for r in event["details"]["risk_reasons"]}
    # from where the session signed in, the token works as before
    assert client_at(env, PARIS).get("/collections", headers=auth).status_code == 200


def test_a_blocked_network_mid_session_ends_the_session(env: Env) -> None:
    name = tenant_with(
        env, "blocking", {**OPEN, "risk": {"networks": {"blocked": ["85.214.0.0/16"]}}}
    )
    auth = signed_in_at(env, PARIS, name)
    refused = client_at(env, BERLIN).get("/collections", headers=auth)
    assert refused.status_code == 401
    assert "insufficient_user_authentication" not in refused.headers.get("www-authenticate", "")
    # the session is over, wherever it is used from now
    assert client_at(env, PARIS).get("/collections", headers=auth).status_code == 401
    admin = mint(env)
    (event,) = events(env, admin, action="session.risk_revoked")
    assert "network_blocked" in {r["reason"] for r in event["details"]["risk_reasons"]}


def test_a_scroll_burst_far_above_the_baseline_is_challenged(env: Env) -> None:
    developer = mint(env, role="developer", acr="aal2")
    rt = runtime_of(env)
    now = env.clock.now()
    policy = {"risk": {"volume": {"floors": {"query": 1, "scroll": 1, "export": 1}}}}
    with rt.db.begin() as conn:
        tenant_id = user_by_id(conn, developer.user_id).tenant_id
        save_policy(conn, tenant_id, Policy.from_document(policy), now=now)
        # a developer who scrolls about 20 points in a busy minute, 5 hours of history
        hours = [(now - timedelta(hours=h)).replace(minute=0, second=0) for h in range(2, 7)]
        save_usage(conn, {(developer.user_id, "scroll", hour): [60, 20] for hour in hours})
    client = env.client
    assert (
        client.put(
            "/collections/docs",
            headers=developer.auth,
            json={"vectors": {"size": 4, "distance": "Cosine"}},
        ).status_code
        == 200
    )
    points = [{"id": n, "vector": [1.0, 0.5, 0.25, float(n)]} for n in range(1, 101)]
    assert (
        client.put(
            "/collections/docs/points?wait=true", headers=developer.auth, json={"points": points}
        ).status_code
        == 200
    )
    scroll = {"limit": 10}
    assert (
        client.post(
            "/collections/docs/points/scroll", headers=developer.auth, json=scroll
        ).status_code
        == 200
    )
    env.clock.advance(300)
    client.app.state.door.continuous.housekeeping()  # the baselines are loaded (every 5 min)
    env.clock.advance(61)
    big = {"limit": 100}
    codes = [
        client.post("/collections/docs/points/scroll", headers=developer.auth, json=big).status_code
        for _ in range(5)
    ]
    # 300 points in a minute crossed 10 x the baseline (200); the next request is challenged,
    # well before 20 x the baseline (400) is reached
    assert codes == [200, 200, 200, 401, 401]
    challenge_of(client.post("/collections/docs/points/scroll", headers=developer.auth, json=big))
    admin = mint(env)
    (event,) = events(env, admin, action="session.risk_challenged")
    (reason,) = event["details"]["risk_reasons"]
    assert reason["reason"] == "volume_scroll_burst"
    assert reason["baseline"] == 20
    with rt.db.read() as conn:
        kinds = set(conn.execute(select(risk_events.c.kind)).scalars())
    assert "session" in kinds
    # a sign-in after the burst meets the challenge
    env.clock.advance(1)
    with rt.db.begin() as conn:
        user = user_by_id(conn, developer.user_id)
        fresh = new_session(conn, rt.sessions, user, acr="aal2", now=env.clock.now())
    again = client.post(
        "/collections/docs/points/scroll",
        headers={"Authorization": f"Bearer {fresh.access_token}"},
        json=scroll,
    )
    assert again.status_code == 200, again.text
