"""Issue 13's leftover: on an IP-address public URL browsers refuse WebAuthn, so a user's
security keys cannot work there. A sign-in or step-up never offers them: ``webauthn`` is
left out of ``methods`` and named under ``unavailable`` with ``webauthn_unavailable``'s
reason. The real app, reopened on the same data directory with an IP-address URL (as an
operator's restart with ``BASTION_PUBLIC_URL=http://127.0.0.1:6333`` would)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from bastion.app import create_app
from bastion.config import load_settings
from tests.http.webauthn_helpers import bearer, register_key, signed_in_admin
from tests.support.app import Env
from tests.support.authenticator import SoftAuthenticator
from tests.support.server import ADMIN_PASSWORD

IP_URL = "http://127.0.0.1:6333"


@contextmanager
def reopened_on_an_ip_address(env: Env) -> Iterator[TestClient]:
    settings = load_settings(data_dir=env.data_dir, argon2_profile="test", public_url=IP_URL)
    with TestClient(create_app(settings, clock=env.clock), raise_server_exceptions=False) as c:
        yield c


def login(client: TestClient) -> Any:
    return client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})


def test_a_key_that_cannot_work_here_is_not_offered_but_named(env: Env) -> None:
    secret, tokens = signed_in_admin(env)
    assert register_key(env, bearer(tokens), SoftAuthenticator()).status_code == 201
    assert "webauthn" in env.login().json()["methods"]  # on the localhost URL it works

    with reopened_on_an_ip_address(env) as client:
        answer = login(client)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "mfa_required"
        assert "webauthn" not in body["methods"]
        assert body["methods"] == ["totp", "recovery_code"]
        (unavailable,) = body["unavailable"]
        assert unavailable["method"] == "webauthn"
        assert unavailable["code"] == "webauthn_unavailable"
        assert "BASTION_PUBLIC_URL" in unavailable["detail"]
        tx = body["transaction_id"]
        # asked anyway: the same reason, never a 500
        challenge = client.post(f"/auth/login/{tx}/challenge", json={"method": "webauthn"})
        assert challenge.status_code == 409
        assert challenge.json()["code"] == "webauthn_unavailable"
        verify = client.post(
            f"/auth/login/{tx}/verify", json={"method": "webauthn", "credential": {"id": "x"}}
        )
        assert verify.status_code == 422
        assert verify.json()["code"] == "method_not_available"
        done = client.post(
            f"/auth/login/{tx}/verify", json={"method": "totp", "code": env.totp_now(secret)}
        )
        assert done.status_code == 200, done.text
        auth = bearer(done.json())
        env.next_step()

        # a step-up to aal2 offers the code methods only; to aal3 (only a key can) says why
        step_up = client.post("/auth/step-up", headers=auth, json={"acr_values": "aal2"})
        assert step_up.status_code == 200, step_up.text
        assert "webauthn" not in step_up.json()["methods"]
        assert [u["method"] for u in step_up.json()["unavailable"]] == ["webauthn"]
        aal3 = client.post("/auth/step-up", headers=auth, json={"acr_values": "aal3"})
        assert aal3.status_code == 409, aal3.text
        assert aal3.json()["code"] == "webauthn_unavailable"


def test_a_key_only_user_is_told_why_there_is_no_method(env: Env) -> None:
    """A user whose only factor is a security key: no method works here; the answer says
    so (empty ``methods``, the reason under ``unavailable``) instead of a dead end."""
    restricted = env.login().json()
    assert restricted["status"] == "enrollment_required"
    key = SoftAuthenticator()
    assert register_key(env, bearer(restricted["access_token"]), key).status_code == 201
    with reopened_on_an_ip_address(env) as client:
        body = login(client).json()
        assert body["status"] == "mfa_required"
        assert body["methods"] == []
        assert [u["code"] for u in body["unavailable"]] == ["webauthn_unavailable"]
