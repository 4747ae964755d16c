"""Security keys and passkeys through the real app: the steps the HTTP tests share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bastion.runtime import Runtime
from bastion.storage.schema import audit_events
from tests.support.app import Env
from tests.support.authenticator import SoftAuthenticator
from tests.support.webauthn import ORIGIN


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}


def register_key(
    env: Env,
    auth: dict[str, str],
    key: SoftAuthenticator,
    *,
    name: str = "YubiKey",
    origin: str = ORIGIN,
    **overrides: Any,
) -> Any:
    """Options → the authenticator → ``POST /me/factors/webauthn`` (the response)."""
    options = env.client.post("/me/factors/webauthn/options", headers=auth)
    assert options.status_code == 200, options.text
    credential = key.create(options.json(), origin=origin, **overrides)
    return env.client.post(
        "/me/factors/webauthn", headers=auth, json={"credential": credential, "name": name}
    )


def key_challenge(env: Env, transaction_id: str) -> dict[str, Any]:
    answer = env.client.post(f"/auth/login/{transaction_id}/challenge", json={"method": "webauthn"})
    assert answer.status_code == 200, answer.text
    options: dict[str, Any] = answer.json()["options"]
    return options


def verify_key(env: Env, transaction_id: str, credential: dict[str, Any]) -> Any:
    return env.client.post(
        f"/auth/login/{transaction_id}/verify",
        json={"method": "webauthn", "credential": credential},
    )


def sign_in_with_key(
    env: Env, key: SoftAuthenticator, *, origin: str = ORIGIN, **overrides: Any
) -> Any:
    """Password, then the key as the second factor (the response of ``/verify``)."""
    tx = env.login().json()
    assert tx["status"] == "mfa_required", tx
    assert "webauthn" in tx["methods"], tx
    options = key_challenge(env, tx["transaction_id"])
    return verify_key(env, tx["transaction_id"], key.get(options, origin=origin, **overrides))


def passkey_sign_in(env: Env, key: SoftAuthenticator, **overrides: Any) -> Any:
    started = env.client.post("/auth/passkey/options")
    assert started.status_code == 200, started.text
    body = started.json()
    credential = key.get(body["options"], origin=overrides.pop("origin", ORIGIN), **overrides)
    return env.client.post(
        "/auth/passkey/verify",
        json={"transaction_id": body["transaction_id"], "credential": credential},
    )


def actions(env: Env, action: str) -> list[Any]:
    """The audit events of ``action``, oldest first (read from the database)."""
    rt: Runtime = env.client.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.read() as conn:
        return list(
            conn.execute(
                select(audit_events)
                .where(audit_events.c.action == action)
                .order_by(audit_events.c.seq)
            ).all()
        )


def signed_in_admin(env: Env) -> tuple[str, dict[str, Any]]:
    """The bootstrap admin with TOTP and recovery codes, signed in with TOTP (aal2)."""
    secret, _codes = env.enrolled_admin()
    return secret, env.full_login(secret)
