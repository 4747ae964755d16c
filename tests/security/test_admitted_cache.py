"""The guard remembers a request it just admitted; that memory must never widen access.

An admitted (credential, action, resource) is served without re-running the door only
while the live state and tenant rules behind it are fresh (≤ 0.5 s) and never past the
credential's own expiry.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from tests.security.test_step_up import bearer, mint
from tests.support.app import Env

from bastion.runtime import Runtime
from bastion.storage.schema import audit_events, users

DIM = 4
COLLECTION = "admitted"


def _collection(env: Env) -> None:
    admin = mint(env, role="admin", acr="aal3", amr=["hwk", "mfa", "user"])
    created = env.client.put(
        f"/collections/{COLLECTION}",
        headers=bearer(admin),
        json={"vectors": {"size": DIM, "distance": "Cosine"}},
    )
    assert created.status_code == 200, created.text


def _exists(env: Env, token: str) -> int:
    return env.client.get(f"/collections/{COLLECTION}/exists", headers=bearer(token)).status_code


def test_admitted_token_is_refused_once_it_expires(env: Env) -> None:
    _collection(env)
    token = mint(env, role="viewer", acr="aal2", amr=["mfa", "otp", "pwd"])
    assert _exists(env, token) == 200  # admitted, and remembered
    assert _exists(env, token) == 200
    rt: Runtime = env.client.app.state.runtime  # type: ignore[attr-defined]
    env.clock.advance(rt.settings.access_token_ttl + rt.settings.clock_skew + 1)
    refused = env.client.get(f"/collections/{COLLECTION}/exists", headers=bearer(token))
    assert refused.status_code == 401, refused.text


def test_admission_for_one_action_does_not_admit_another(env: Env) -> None:
    _collection(env)
    viewer = mint(env, role="viewer", acr="aal2", amr=["mfa", "otp", "pwd"])
    assert _exists(env, viewer) == 200
    write = env.client.put(
        f"/collections/{COLLECTION}/points",
        headers=bearer(viewer),
        json={"points": [{"id": 1, "vector": [0.1] * DIM}]},
    )
    assert write.status_code == 403, write.text
    rt: Runtime = env.client.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.read() as conn:  # the denial is decided afresh, and audited
        denied = conn.execute(
            select(audit_events.c.action, audit_events.c.resource).where(
                audit_events.c.action == "authz.denied"
            )
        ).all()
    assert (("authz.denied", f"collection:{COLLECTION}")) in [tuple(row) for row in denied]


def test_admission_for_one_collection_does_not_admit_another(env: Env) -> None:
    _collection(env)
    viewer = mint(env, role="viewer", acr="aal2", amr=["mfa", "otp", "pwd"])
    assert _exists(env, viewer) == 200
    other = env.client.get("/collections/elsewhere", headers=bearer(viewer))
    assert other.status_code == 404, other.text  # decided afresh: readable, but absent


def test_suspension_written_behind_the_servers_back_stops_an_admitted_token(env: Env) -> None:
    _collection(env)
    token = mint(env, role="viewer", acr="aal2", amr=["mfa", "otp", "pwd"])
    assert _exists(env, token) == 200
    rt: Runtime = env.client.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.begin() as conn:  # as the CLI would: straight to the database
        conn.execute(
            users.update().where(users.c.username == "viewer-aal2").values(status="suspended")
        )
    deadline = time.monotonic() + 1.0
    while _exists(env, token) == 200:
        assert time.monotonic() < deadline, "a suspended user's admitted token still works"
        time.sleep(0.02)
    assert _exists(env, token) == 401
