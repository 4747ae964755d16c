"""``bastion.client``: one sign-in (password + TOTP), then the real qdrant-client keeps
working past the access token's lifetime (shortened here to 30 s) on refreshed tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from bastion.client import BastionSession, SessionEnded, SignInFailed
from tests.support.server import LiveServer, start_server

pytestmark = [
    pytest.mark.filterwarnings("ignore:Auth token provider is used with an insecure connection"),
]
PASSWORD = "tangerine submarine orchestra 9"
TTL = 30  # the shortest access token lifetime the settings allow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    env = {"BASTION_ACCESS_TOKEN_TTL": str(TTL), "BASTION_CLOCK_SKEW": "0"}  # expiry is exact
    process = start_server(tmp_path / "data", env=env)
    try:
        yield LiveServer(process)
    finally:
        process.stop()


def enrolled(server: LiveServer, username: str) -> pyotp.TOTP:
    """A developer who enrolled an authenticator app, as the console would have them do."""
    server.user(role="developer", username=username, password=PASSWORD)
    first = httpx.post(
        f"{server.url}/auth/login", json={"username": username, "password": PASSWORD}
    ).json()
    assert first["status"] == "enrollment_required", first
    auth = {"Authorization": f"Bearer {first['access_token']}"}
    made = httpx.post(f"{server.url}/me/factors/totp", headers=auth).json()
    totp = pyotp.TOTP(made["secret"])
    activated = httpx.post(
        f"{server.url}/me/factors/totp/{made['factor_id']}/activate",
        headers=auth,
        json={"code": totp.now()},
    )
    assert activated.status_code == 200, activated.text
    return totp


def next_code(totp: pyotp.TOTP) -> str:
    """The next time step's code (accepted: one step of drift), never the one just used."""
    return totp.at(time.time() + 30)


def test_qdrant_client_keeps_working_past_the_token_lifetime(server: LiveServer) -> None:
    totp = enrolled(server, "alice")
    offered: list[str] = []

    def code(methods: object) -> str:
        offered.extend(methods)  # type: ignore[call-overload]
        return next_code(totp)

    session = BastionSession.sign_in(server.url, "alice", PASSWORD, code=code)
    assert "totp" in offered
    assert session.acr == "aal2"
    assert "eyJ" not in repr(session)  # no token in a log line
    client = QdrantClient(
        url=server.url, auth_token_provider=session.token, timeout=30, check_compatibility=False
    )
    client.create_collection("notes", vectors_config=models.VectorParams(size=4, distance="Dot"))
    first = session.token()
    started = time.monotonic()
    point = 0
    while time.monotonic() - started < TTL + 5:  # past the first token's expiry
        client.upsert("notes", [models.PointStruct(id=point, vector=[1.0, 0, 0, point])])
        point += 1
        time.sleep(2)
    assert session.token() != first  # refreshed (at least once) along the way
    assert client.count("notes").count == point
    expired = httpx.get(f"{server.url}/collections", headers={"Authorization": f"Bearer {first}"})
    assert expired.status_code == 401  # the first token is dead: the client lived on refreshes
    found = client.query_points("notes", query=[0, 0, 0, 1.0], limit=1).points
    assert found[0].id == point - 1
    client.close()

    session.logout()
    session._tokens.expires_at = 0  # due for a refresh, which the ended session refuses
    with pytest.raises(SessionEnded):
        session.token()


def test_async_client_takes_atoken(server: LiveServer) -> None:
    totp = enrolled(server, "bob")
    session = BastionSession.sign_in(server.url, "bob", PASSWORD, code=next_code(totp))

    async def use() -> bool:
        client = AsyncQdrantClient(
            url=server.url, auth_token_provider=session.atoken, check_compatibility=False
        )
        try:
            return await client.collection_exists("nothing")
        finally:
            await client.close()

    assert asyncio.run(use()) is False


def test_wrong_code_and_no_factor_fail_clearly(server: LiveServer) -> None:
    enrolled(server, "carol")
    with pytest.raises(SignInFailed) as wrong:
        BastionSession.sign_in(server.url, "carol", PASSWORD, code="000000")
    assert wrong.value.status == 401
    assert wrong.value.code == "invalid_code"
    server.user(role="viewer", username="dave", password=PASSWORD)
    with pytest.raises(SignInFailed, match="enrol an authenticator"):
        BastionSession.sign_in(server.url, "dave", PASSWORD, code="123456")
    with pytest.raises(SignInFailed) as bad:
        BastionSession.sign_in(server.url, "carol", "not the password", code="123456")
    assert bad.value.code == "invalid_credentials"
    with pytest.raises(ValueError, match="http"):
        BastionSession.sign_in("file:///etc/passwd", "carol", PASSWORD)
