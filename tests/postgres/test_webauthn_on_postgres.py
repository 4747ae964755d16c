"""Security keys and passkeys on PostgreSQL: the same routes, challenges and counters (no
SQLite-only SQL; a challenge used once is gone for every replica)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bastion.app import create_app
from bastion.clock import ManualClock
from bastion.config import load_settings
from bastion.runtime import Runtime
from tests.http.webauthn_helpers import (
    bearer,
    key_challenge,
    passkey_sign_in,
    register_key,
    signed_in_admin,
    verify_key,
)
from tests.support.app import Env
from tests.support.authenticator import SoftAuthenticator
from tests.support.postgres import fresh_database
from tests.support.server import ADMIN_PASSWORD
from tests.support.webauthn import ORIGIN


@pytest.fixture
def pg_env(pgvector_url: str, tmp_path: Path) -> Iterator[Env]:
    clock = ManualClock(datetime(2026, 11, 30, 12, tzinfo=UTC))
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=fresh_database(pgvector_url),
        argon2_profile="test",
        bootstrap_admin_password=ADMIN_PASSWORD,
    )
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as http:
        yield Env(client=http, clock=clock, data_dir=settings.data_dir)


def test_security_key_and_passkey_on_postgres(pg_env: Env) -> None:
    runtime: Runtime = pg_env.client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.db.engine.dialect.name == "postgresql"
    _, tokens = signed_in_admin(pg_env)
    key = SoftAuthenticator()
    assert register_key(pg_env, bearer(tokens), key).status_code == 201
    tx = pg_env.login().json()["transaction_id"]
    answer = key.get(key_challenge(pg_env, tx), origin=ORIGIN)
    signed_in = verify_key(pg_env, tx, answer)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["acr"] == "aal3"
    again = pg_env.login().json()["transaction_id"]
    key_challenge(pg_env, again)
    replayed = verify_key(pg_env, again, answer)
    assert replayed.status_code == 401
    assert replayed.json()["reason"] == "challenge_mismatch"
    passkey = passkey_sign_in(pg_env, key)
    assert passkey.status_code == 200, passkey.text
    assert passkey.json()["acr"] == "aal3"
