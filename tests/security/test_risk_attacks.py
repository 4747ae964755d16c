"""Attacks on the adaptive sign-in (issue 15): spraying, forged client addresses,
stolen, expired and revoked remembered-device credentials."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from tests.admin.helpers import runtime_of
from tests.support.app import Env
from tests.support.risk import BERLIN, LONDON, TOKYO
from tests.support.server import ADMIN_PASSWORD, Credentials, LiveServer

from bastion.audit import query
from bastion.authz import Policy
from bastion.identity.rules import save_policy
from bastion.identity.tenants import tenant_by_name


class CountingHasher(PasswordHasher):
    """argon2's hasher, counting its verifications (a spy on the library, not on Bastion)."""

    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        CountingHasher.verified += 1
        return super().verify(hash, password)


def client_at(env: Env, address: str) -> TestClient:
    return TestClient(env.client.app, client=(address, 50000), raise_server_exceptions=False)


def counting(env: Env) -> type[CountingHasher]:
    rt = runtime_of(env)
    h = rt.hasher
    spy = CountingHasher(
        time_cost=h.time_cost,
        memory_cost=h.memory_cost,
        parallelism=h.parallelism,
        hash_len=h.hash_len,
        salt_len=h.salt_len,
        type=h.type,
    )
    rt.__dict__["authn"] = dataclasses.replace(rt.authn, hasher=spy)
    CountingHasher.verified = 0
    return CountingHasher


GUESS = "Winter2026!"  # what sprayers try


def sign_in(client: TestClient, username: str, password: str = GUESS) -> Any:
    return client.post("/auth/login", json={"username": username, "password": password})


def test_password_spraying_is_refused_before_argon2(env: Env) -> None:
    spy = counting(env)
    sprayer = client_at(env, TOKYO)
    for n in range(10):
        assert sign_in(sprayer, f"guess-{n}").status_code == 401
    assert spy.verified == 10
    for n in range(10, 50):
        refused = sign_in(sprayer, f"guess-{n}")
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) > 0
    # the right password of a real user from the spraying address: refused the same way
    assert sign_in(sprayer, "admin", ADMIN_PASSWORD).status_code == 429
    assert spy.verified == 10  # not one hash for the 41 refused attempts
    # the refusals are recorded (counted, one event per limit, address and second)
    env.client.app.state.audit_buffer.flush()
    with runtime_of(env).db.read() as conn:
        events = query(conn, tenant_id=None, action="login.failure", limit=1000).events
    throttled = [e for e in events if e.reason == "rate_limited"]
    assert throttled
    assert all(e.details["scope"] == "spraying" for e in throttled)
    assert sum(e.details["attempts"] for e in throttled) == 41
    # another address signs in as usual
    assert sign_in(client_at(env, BERLIN), "admin", ADMIN_PASSWORD).status_code == 200


def block_london_in_default_tenant(server: Credentials) -> None:
    rt = server._runtime()
    try:
        with rt.db.begin() as conn:
            tenant = tenant_by_name(conn, "default")
            assert tenant is not None
            document = {"risk": {"networks": {"blocked": ["81.2.69.0/24"]}}}
            save_policy(conn, tenant.id, Policy.from_document(document), now=rt.clock.now())
    finally:
        rt.close()


def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored_by_the_risk_engine(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """No trusted proxy is configured: a client cannot place itself in a blocked network
    (to get a victim refused), nor escape the spraying limit by inventing addresses."""
    block_london_in_default_tenant(live_server)
    name = live_server.user(username="forged-xff")
    signed_in = httpx.post(
        f"{live_server.url}/auth/login",
        json={"username": name, "password": ADMIN_PASSWORD},
        headers={"X-Forwarded-For": LONDON},
    )
    assert signed_in.status_code == 200, signed_in.text  # scored from 127.0.0.1, not London
    codes = [
        httpx.post(
            f"{live_server.url}/auth/login",
            json={"username": f"sprayed-{n}", "password": GUESS},
            headers={"X-Forwarded-For": f"{TOKYO.rsplit('.', 1)[0]}.{n + 1}"},
        ).status_code
        for n in range(12)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429, 429]  # one peer, whatever addresses it names
