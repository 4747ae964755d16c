"""Export (admin + aal3, audited with its count), data-plane audit events, anonymous mode."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from bastion.app import create_app
from bastion.audit import StoredEvent, query
from bastion.config import load_settings
from tests.support.server import Credentials, LiveServer


def events(server: Credentials, action: str) -> list[StoredEvent]:
    runtime = server._runtime()
    try:
        with runtime.db.read() as conn:
            return list(query(conn, tenant_id=None, action=action, limit=1000).events)
    finally:
        runtime.close()


def wait_for(server: Credentials, action: str, count: int) -> list[StoredEvent]:
    deadline = time.monotonic() + 5
    found = events(server, action)
    while len(found) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        found = events(server, action)
    return found


@pytest.fixture(scope="module")
def collection(live_server: LiveServer) -> str:
    headers = {"Authorization": f"Bearer {live_server.token(role='developer')}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
        assert http.put(
            "/collections/exported", json={"vectors": {"size": 4, "distance": "Dot"}}
        ).is_success
        points = [{"id": i, "vector": [i, 1, 0, 0], "payload": {"n": i}} for i in range(1, 26)]
        assert http.put(
            "/collections/exported/points?wait=true", json={"points": points}
        ).is_success
    return "exported"


def test_export_needs_admin_at_aal3_and_is_audited(
    live_server: LiveServer, collection: str
) -> None:
    url = f"{live_server.url}/collections/{collection}/export"
    developer = {"Authorization": f"Bearer {live_server.token(role='developer', acr='aal3')}"}
    assert httpx.post(url, headers=developer).status_code == 403
    admin_aal2 = {"Authorization": f"Bearer {live_server.token(role='admin', acr='aal2')}"}
    challenged = httpx.post(url, headers=admin_aal2)
    assert challenged.status_code == 401
    assert 'acr_values="aal3"' in challenged.headers["www-authenticate"]

    admin_aal3 = {"Authorization": f"Bearer {live_server.token(role='admin', acr='aal3')}"}
    exported = httpx.post(url, headers=admin_aal3, timeout=30)
    assert exported.status_code == 200
    lines = [orjson.loads(line) for line in exported.content.splitlines() if line]
    assert sorted(line["id"] for line in lines) == list(range(1, 26))
    audited = wait_for(live_server, "points.exported", 1)
    assert audited[-1].details["count"] == 25


def test_writes_and_searches_are_audited(live_server: LiveServer, collection: str) -> None:
    headers = {"Authorization": f"Bearer {live_server.token(role='viewer')}"}
    before = len(events(live_server, "points.searched"))
    found = httpx.post(
        f"{live_server.url}/collections/{collection}/points/query",
        headers=headers,
        json={"query": [1, 0, 0, 0], "limit": 3},
    )
    assert found.status_code == 200
    searched = wait_for(live_server, "points.searched", before + 1)
    assert searched[-1].resource == f"collection:{collection}"
    assert searched[-1].details["result_count"] == 3
    upserts = events(live_server, "points.upserted")
    assert any(event.details.get("count") == 25 for event in upserts)
    assert events(live_server, "collection.created")


def test_anonymous_read_only_mode_is_off_by_default_and_read_only_when_on(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", argon2_profile="test", anonymous_read=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/collections").status_code == 200
        refused = client.put("/collections/x", json={"vectors": {"size": 2, "distance": "Dot"}})
        assert refused.status_code in {401, 403}
    closed = load_settings(data_dir=tmp_path / "data2", argon2_profile="test")
    with TestClient(create_app(closed), raise_server_exceptions=False) as client:
        assert client.get("/collections").status_code == 401
