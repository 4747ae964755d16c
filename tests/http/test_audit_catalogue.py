"""Every event of the audit catalogue (``audit.EVENTS``) is emitted by some code path.

One story through the real app (in-process, real SQLite, a ManualClock) does every act
the catalogue names; afterwards, the log holds exactly the catalogue's actions. An event
registered but never emitted, or emitted but not registered, fails here: the catalogue
cannot drift from the code again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.app import create_app
from bastion.audit import EVENTS
from bastion.clock import ManualClock
from bastion.config import load_settings
from bastion.runtime import Runtime
from bastion.storage import Database
from bastion.storage.schema import audit_events
from tests.admin.helpers import mint
from tests.support.app import Env
from tests.support.authenticator import SoftAuthenticator
from tests.support.risk import PARIS, SYDNEY, TOKYO
from tests.support.server import ADMIN_PASSWORD
from tests.support.webauthn import ORIGIN

# Registered for work in flight elsewhere, with where it will come from. An entry here
# that the story below emits fails the test: then it is no longer pending.
PENDING: dict[str, str] = {}
GOOD_PASSWORD = "a long and unusual passphrase 7"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def sign_in_story(env: Env) -> None:
    """Sign-in, enrolment, step-up, refresh, revocation and self-service."""
    client = env.client
    secret, codes = env.enrolled_admin()  # enrollment_required, factor enrolled + activated
    assert env.login("admin", "not the password").status_code == 401  # login.failure
    tokens = env.full_login(secret)  # login.mfa_required, login.success
    access = bearer(tokens["access_token"])
    tx = ok(client.post("/auth/step-up", headers=access))  # step_up.started
    wrong = {"method": "totp", "code": "000000"}
    assert client.post(f"/auth/login/{tx['transaction_id']}/verify", json=wrong).status_code == 401
    stepped = ok(
        client.post(
            f"/auth/login/{tx['transaction_id']}/verify",
            json={"method": "totp", "code": env.totp_now(secret)},
        )
    )  # step_up.failure, then step_up.success
    env.next_step()
    refreshed = ok(
        client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": stepped["refresh_token"]},
        )
    )  # token.refreshed
    reused = client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": stepped["refresh_token"]},
    )  # token.refresh_reuse_detected
    assert reused.status_code == 400
    tx = ok(client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}))
    remembered = ok(
        client.post(
            f"/auth/login/{tx['transaction_id']}/verify",
            json={"method": "totp", "code": env.totp_now(secret), "remember_device": True},
        )
    )  # device.remembered
    env.next_step()
    mine = bearer(remembered["access_token"])
    (device,) = ok(client.get("/me/devices", headers=mine))
    ok(client.delete(f"/me/devices/{device['id']}", headers=mine), 204)  # device.revoked
    tx = ok(client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}))
    by_code = ok(
        client.post(
            f"/auth/login/{tx['transaction_id']}/verify",
            json={"method": "recovery_code", "code": codes[0]},
        )
    )  # recovery_code.used
    ok(client.post("/auth/revoke", data={"token": refreshed["refresh_token"]}))  # token.revoked
    ok(client.post("/auth/logout", headers=bearer(by_code["access_token"])))  # session.logout
    fresh = env.full_login(secret)
    mine = bearer(fresh["access_token"])
    other = env.full_login(secret)
    ok(client.delete(f"/me/sessions/{session_of(env, other)}", headers=mine), 204)
    factor = ok(client.post("/me/factors/totp", headers=mine), 201)  # needs aal2: it has one
    ok(client.delete(f"/me/factors/{factor['factor_id']}", headers=mine), 204)  # factor.removed
    pending = ok(client.post("/me/factors/totp", headers=mine), 201)
    activate = f"/me/factors/totp/{pending['factor_id']}/activate"
    for _ in range(5):  # factor.activated (failure) x 5, then factor.locked
        assert client.post(activate, headers=mine, json={"code": "000000"}).status_code == 401
    key = SoftAuthenticator()
    credential = key.create(
        ok(client.post("/me/factors/webauthn/options", headers=mine)), origin=ORIGIN
    )
    answer = {"credential": credential, "name": "Key"}
    made = ok(client.post("/me/factors/webauthn", headers=mine, json=answer), 201)
    replayed = client.post("/me/factors/webauthn", headers=mine, json=answer)
    assert replayed.status_code == 400  # webauthn.refused (challenge_expired: used)
    rename = {"name": "Desk key"}
    ok(client.patch(f"/me/factors/{made['factor']['id']}", headers=mine, json=rename))
    change = {"current_password": ADMIN_PASSWORD, "new_password": GOOD_PASSWORD}
    ok(client.post("/me/password", headers=mine, json=change))  # user.password_changed
    continuous_story(env, secret)


def continuous_story(env: Env, secret: str) -> None:
    """A session signed in from Paris used from Sydney at once; a session used from a
    blocked country (issue 15)."""
    app = env.client.app
    paris = TestClient(app, client=(PARIS, 50000), raise_server_exceptions=False)
    tx = ok(paris.post("/auth/login", json={"username": "admin", "password": GOOD_PASSWORD}))
    verified = ok(
        paris.post(
            f"/auth/login/{tx['transaction_id']}/verify",
            json={"method": "totp", "code": env.totp_now(secret)},
        )
    )
    env.next_step()
    sydney = TestClient(app, client=(SYDNEY, 50000), raise_server_exceptions=False)
    travelled = bearer(verified["access_token"])
    assert sydney.get("/me", headers=travelled).status_code == 401  # session.risk_challenged
    admin = mint(env, acr="aal3")
    ok(
        env.client.put(
            "/admin/policy", headers=admin.auth, json={"risk": {"countries": {"blocked": ["JP"]}}}
        )
    )
    victim = mint(env, role="viewer", acr="aal2")
    tokyo = TestClient(app, client=(TOKYO, 50000), raise_server_exceptions=False)
    assert tokyo.get("/me", headers=victim.auth).status_code == 401  # session.risk_revoked
    ok(env.client.put("/admin/policy", headers=admin.auth, json={}))


def session_of(env: Env, tokens: dict[str, Any]) -> str:
    sessions = ok(env.client.get("/me/sessions", headers=bearer(tokens["access_token"])))
    return next(str(s["id"]) for s in sessions if s["current"])


def admin_story(env: Env) -> None:
    """Administration: tenants, users, roles, policy, service accounts and keys, audit."""
    client = env.client
    admin = mint(env, acr="aal3")
    viewer = mint(env, role="viewer", acr="aal2")
    stale = mint(env, acr="aal2", age=3600)
    assert client.get("/admin/users", headers=viewer.auth).status_code == 403  # authz.denied
    assert client.post("/admin/tenants", headers=stale.auth, json={"name": "x"}).status_code == 401
    ok(client.post("/admin/tenants", headers=admin.auth, json={"name": "acme"}), 201)
    made = ok(
        client.post("/admin/users", headers=admin.auth, json={"username": "dora", "roles": []}),
        201,
    )  # user.created (with an enrollment link)
    token = made["enrollment"]["token"]
    ok(client.post("/setup/enroll", json={"token": token, "password": GOOD_PASSWORD}))
    user = f"/admin/users/{made['id']}"
    ok(client.patch(user, headers=admin.auth, json={"roles": ["viewer"]}))  # user.updated
    ok(client.patch(user, headers=admin.auth, json={"status": "suspended"}))  # user.suspended
    ok(client.post(f"{user}/reset-factors", headers=admin.auth))  # user.factors_reset
    ok(client.post(f"{user}/unlock", headers=admin.auth))  # user.unlocked
    ok(client.delete(user, headers=admin.auth), 204)  # user.deleted
    role = {"name": "auditor", "permissions": ["audit.read"]}
    ok(client.post("/admin/roles", headers=admin.auth, json=role), 201)  # role.created
    ok(client.delete("/admin/roles/auditor", headers=admin.auth), 204)  # role.deleted
    document = ok(client.get("/admin/policy", headers=admin.auth))
    document["admin_requires_aal3"] = False
    document["password_min_length"] = 9
    ok(client.put("/admin/policy", headers=admin.auth, json=document))  # policy.updated
    account = ok(
        client.post(
            "/admin/service-accounts", headers=admin.auth, json={"name": "etl", "roles": ["viewer"]}
        ),
        201,
    )  # service_account.created
    keys = f"/admin/service-accounts/{account['id']}/keys"
    key = ok(client.post(keys, headers=admin.auth), 201)  # api_key.created
    ok(client.delete(f"{keys}/{key['id']}", headers=admin.auth), 204)  # api_key.revoked
    refused = client.get("/collections", headers={"api-key": key["key"]})  # api_key.rejected
    assert refused.status_code == 401
    ok(client.delete(f"/admin/service-accounts/{account['id']}", headers=admin.auth), 204)
    export = client.get("/admin/audit/export", headers=admin.auth)  # audit.exported
    assert export.status_code == 200
    ok(client.get("/admin/audit/verify", headers=admin.auth))  # audit.verified


def data_story(env: Env) -> None:
    """The data plane: collections, indexes, points, searches, an export."""
    client = env.client
    admin = mint(env, acr="aal3").auth
    ok(
        client.put(
            "/collections/docs", headers=admin, json={"vectors": {"size": 2, "distance": "Dot"}}
        )
    )
    index = {"field_name": "n", "field_schema": "integer"}
    ok(client.put("/collections/docs/index", headers=admin, json=index))  # index.created
    ok(client.delete("/collections/docs/index/n", headers=admin))  # index.deleted
    points = {"points": [{"id": 1, "vector": [1, 0], "payload": {"n": 1}}]}
    ok(client.put("/collections/docs/points?wait=true", headers=admin, json=points))
    ok(client.post("/collections/docs/points/query", headers=admin, json={"query": [1, 0]}))
    create = {"create_alias": {"collection_name": "docs", "alias_name": "d1"}}
    rename = {"rename_alias": {"old_alias_name": "d1", "new_alias_name": "d2"}}
    drop = {"delete_alias": {"alias_name": "d2"}}  # alias.created, alias.renamed, alias.deleted
    aliased = {"actions": [create, rename, drop]}
    ok(client.post("/collections/aliases", headers=admin, json=aliased))
    threshold = {"hnsw_config": {"full_scan_threshold": 1}}  # collection.updated
    ok(client.patch("/collections/docs", headers=admin, json=threshold))
    new_vector = {"points": [{"id": 1, "vector": [0, 1]}]}  # points.vectors_updated
    ok(client.put("/collections/docs/points/vectors", headers=admin, json=new_vector))
    merge = {"payload": {"m": 2}, "points": [1]}  # points.payload_updated
    ok(client.post("/collections/docs/points/payload", headers=admin, json=merge))
    assert client.post("/collections/docs/export", headers=admin).status_code == 200
    backup = client.get("/collections/docs/backup", headers=admin)  # collection.backed_up
    assert backup.status_code == 200
    ok(client.post("/collections/docs2/restore", headers=admin, content=backup.content))
    ok(client.delete("/collections/docs2", headers=admin))  # collection.restored, then gone
    ok(client.post("/collections/docs/points/delete", headers=admin, json={"points": [1]}))
    ok(client.delete("/collections/docs", headers=admin))  # collection.deleted


def test_every_catalogued_event_is_emitted_by_some_code_path(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC))
    settings = load_settings(
        data_dir=tmp_path / "data", argon2_profile="test", bootstrap_admin_password=ADMIN_PASSWORD
    )
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as client:
        env = Env(client=client, clock=clock, data_dir=settings.data_dir)
        rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        url = rt.db.url
        sign_in_story(env)
        admin_story(env)
        data_story(env)
    # After shutdown: the counted events are flushed and the chain head is signed.
    db = Database(url)
    try:
        with db.read() as conn:
            emitted = set(conn.execute(select(audit_events.c.action).distinct()).scalars())
    finally:
        db.dispose()
    assert not set(PENDING) - set(EVENTS), "PENDING names an event that is not registered"
    assert not emitted - set(EVENTS), "emitted but not registered"
    assert not emitted & set(PENDING), f"no longer pending: {sorted(emitted & set(PENDING))}"
    never = sorted(set(EVENTS) - set(PENDING) - emitted)
    assert never == [], f"registered but never emitted: {never}"
