"""``GET /admin/collections``: points and bytes on disk, only of collections the caller may
read (a grant narrowed to one collection lists that one, another tenant's are absent)."""

from __future__ import annotations

from tests.admin.helpers import mint, problem
from tests.support.app import Env


def _collection(env: Env, token: str, name: str, points: int) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    created = env.client.put(
        f"/collections/{name}", json={"vectors": {"size": 4, "distance": "Dot"}}, headers=auth
    )
    assert created.status_code == 200, created.text
    rows = [
        {"id": i, "vector": [1.0, float(i), 0.0, 0.5], "payload": {"text": "x" * 200}}
        for i in range(points)
    ]
    written = env.client.put(
        f"/collections/{name}/points?wait=true", json={"points": rows}, headers=auth
    )
    assert written.status_code == 200, written.text


def test_sizes_count_points_and_bytes(env: Env) -> None:
    admin = mint(env)
    _collection(env, admin.token, "small", 2)
    _collection(env, admin.token, "large", 40)
    answer = env.client.get("/admin/collections", headers=admin.auth)
    assert answer.status_code == 200, answer.text
    found = {item["name"]: item for item in answer.json()["collections"]}
    assert set(found) == {"small", "large"}
    assert found["small"]["points"] == 2
    assert found["large"]["points"] == 40
    assert found["small"]["dim"] == 4
    assert found["small"]["distance"] == "Dot"
    # 40 payloads of 200+ bytes each and their vectors: more than 20 times the small one's
    assert found["large"]["disk_bytes"] > 8_000 > found["small"]["disk_bytes"] > 400


def test_a_narrow_grant_lists_only_its_collection(env: Env) -> None:
    admin = mint(env)
    _collection(env, admin.token, "public", 1)
    _collection(env, admin.token, "secret", 1)
    narrow = mint(env, role="viewer", collections=["public"])
    answer = env.client.get("/admin/collections", headers=narrow.auth)
    assert answer.status_code == 200, answer.text
    assert [item["name"] for item in answer.json()["collections"]] == ["public"]


def test_another_tenants_collections_are_absent(env: Env) -> None:
    admin = mint(env)
    _collection(env, admin.token, "ours", 1)
    created = env.client.post("/admin/tenants", json={"name": "acme"}, headers=admin.auth)
    assert created.status_code == 201, created.text
    stranger = mint(env, tenant="acme")
    answer = env.client.get("/admin/collections", headers=stranger.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["collections"] == []


def test_anonymous_gets_401(env: Env) -> None:
    problem(env.client.get("/admin/collections"), 401, "unauthenticated")
