"""The same code on PostgreSQL: migrations, sign-in, audit chain, vectors (no SQLite-only SQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from bastion.app import create_app
from bastion.audit import verify_chain
from bastion.clock import ManualClock
from bastion.config import load_settings
from bastion.runtime import Runtime
from bastion.vectors.pgvector import PgVectorEngine
from tests.support.postgres import fresh_database
from tests.support.server import ADMIN_PASSWORD


@pytest.fixture(scope="module")
def database_url(pgvector_url: str) -> str:
    return fresh_database(pgvector_url)


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, ManualClock]]:
    clock = ManualClock(datetime(2026, 11, 30, 12, tzinfo=UTC))
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        argon2_profile="test",
        bootstrap_admin_password=ADMIN_PASSWORD,
    )
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as http:
        yield http, clock


def test_sign_in_audit_and_vectors_on_postgres(client: tuple[TestClient, ManualClock]) -> None:
    http, clock = client
    runtime: Runtime = http.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.db.engine.dialect.name == "postgresql"
    assert isinstance(http.app.state.vectors, PgVectorEngine)  # type: ignore[attr-defined]
    login = {"username": "admin", "password": ADMIN_PASSWORD}
    restricted = http.post("/auth/login", json=login).json()["access_token"]
    auth = {"Authorization": f"Bearer {restricted}"}
    enrollment = http.post("/me/factors/totp", headers=auth).json()
    totp = pyotp.TOTP(enrollment["secret"])
    assert (
        http.post(
            f"/me/factors/totp/{enrollment['factor_id']}/activate",
            headers=auth,
            json={"code": totp.at(clock.now())},
        ).status_code
        == 200
    )
    clock.advance(30)
    tx = http.post("/auth/login", json=login).json()
    tokens = http.post(
        f"/auth/login/{tx['transaction_id']}/verify",
        json={"method": "totp", "code": totp.at(clock.now())},
    ).json()
    assert tokens["acr"] == "aal2"
    # The replayed step is refused on PostgreSQL too.
    tx2 = http.post("/auth/login", json=login).json()
    replay = http.post(
        f"/auth/login/{tx2['transaction_id']}/verify",
        json={"method": "totp", "code": totp.at(clock.now())},
    )
    assert replay.status_code == 401
    rotated = http.post(
        "/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert rotated.status_code == 200
    bearer = {"Authorization": f"Bearer {rotated.json()['access_token']}"}
    created = http.put(
        "/collections/pg_docs", headers=bearer, json={"vectors": {"size": 3, "distance": "Cosine"}}
    )
    assert created.status_code == 200, created.text
    upserted = http.put(
        "/collections/pg_docs/points?wait=true",
        headers=bearer,
        json={
            "points": [
                {"id": 1, "vector": [1.0, 0.0, 0.0], "payload": {"kind": "a"}},
                {"id": 2, "vector": [0.0, 1.0, 0.0], "payload": {"kind": "b"}},
            ]
        },
    )
    assert upserted.status_code == 200, upserted.text
    found = http.post(
        "/collections/pg_docs/points/query",
        headers=bearer,
        json={"query": [0.9, 0.1, 0.0], "limit": 1},
    ).json()
    assert found["result"]["points"][0]["id"] == 1

    reuse = http.post(
        "/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert reuse.status_code == 400

    with runtime.db.read() as conn:
        report = verify_chain(conn)
        assert report.ok, report
        assert report.events > 5
    with pytest.raises(Exception, match="append-only"), runtime.db.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'x'"))


@pytest.fixture
def own_client(pgvector_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, ManualClock]]:
    """The app on a database of its own (a bootstrap admin without a factor yet)."""
    clock = ManualClock(datetime(2026, 11, 30, 12, tzinfo=UTC))
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=fresh_database(pgvector_url),
        argon2_profile="test",
        bootstrap_admin_password=ADMIN_PASSWORD,
    )
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as http:
        yield http, clock


def test_guessing_limits_familiar_addresses_and_unlock_on_postgres(
    own_client: tuple[TestClient, ManualClock],
) -> None:
    """Issue 11.2/11.9 on PostgreSQL: the counts, the row lock of a verification, the
    familiar-address history and an unlock run there as on SQLite."""
    from tests.support.credentials import new_session, new_user

    http, clock = own_client
    runtime: Runtime = http.app.state.runtime  # type: ignore[attr-defined]
    home = TestClient(http.app, client=("192.0.2.10", 50000), raise_server_exceptions=False)
    login = {"username": "admin", "password": ADMIN_PASSWORD}
    restricted = home.post("/auth/login", json=login).json()["access_token"]
    auth = {"Authorization": f"Bearer {restricted}"}
    enrollment = home.post("/me/factors/totp", headers=auth).json()
    totp = pyotp.TOTP(enrollment["secret"])
    activate = f"/me/factors/totp/{enrollment['factor_id']}/activate"
    assert home.post(activate, headers=auth, json={"code": totp.at(clock.now())}).status_code == 200
    clock.advance(30)
    tx = home.post("/auth/login", json=login).json()["transaction_id"]
    verified = home.post(
        f"/auth/login/{tx}/verify", json={"method": "totp", "code": totp.at(clock.now())}
    )
    assert verified.status_code == 200, verified.text  # 192.0.2.10 is now familiar
    clock.advance(30)

    def wrong_code() -> int:
        started = home.post("/auth/login", json=login).json()["transaction_id"]
        body = {"method": "totp", "code": "000000"}
        return home.post(f"/auth/login/{started}/verify", json=body).status_code

    assert [wrong_code() for _ in range(6)] == [401] * 5 + [429]
    stranger = TestClient(http.app, client=("198.51.100.1", 50000), raise_server_exceptions=False)
    wrong = {"username": "admin", "password": "a wrong guess"}
    assert [stranger.post("/auth/login", json=wrong).status_code for _ in range(11)][-1] == 429
    assert home.post("/auth/login", json=login).status_code == 200  # familiar: not throttled

    now = clock.now()
    with runtime.db.begin() as conn:
        admin = new_user(conn, roles=["admin"], now=now)
        token = new_session(conn, runtime.sessions, admin, acr="aal3", now=now).access_token
    users = http.get("/admin/users", headers={"Authorization": f"Bearer {token}"}).json()
    owner = next(user["id"] for user in users["users"] if user["username"] == "admin")
    unlocked = http.post(
        f"/admin/users/{owner}/unlock", headers={"Authorization": f"Bearer {token}"}
    )
    assert unlocked.json() == {
        "user_id": owner,
        "sign_in_failures": 10,
        "second_factor_failures": 5,
    }
    assert stranger.post("/auth/login", json=login).status_code == 200
